import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { Haproxy } from './harness/haproxy.ts';
import { loopbackMembers, loopbackNet, tcpService } from './harness/pool-config.ts';
import { openSocket, roundTrip } from './harness/tcp-sessions.ts';
import { freePortRange } from './harness/ports.ts';

const portBase = await freePortRange(20);

/** A real HAProxy in front of two Ebb members, steered by Ebb's agent-check answers (SPEC §4.3). */
describe('HAProxy agent-check', () => {
  const ws = new Workspace();
  const base = portBase;
  const servicePort = base;
  const agentPort = base + 1;
  const members = loopbackMembers(
    2,
    loopbackNet(),
    () => [tcpService('web', servicePort), tcpService('other', servicePort + 10)],
    { agentCheckPort: agentPort },
  );
  const frontend = { host: '127.0.0.1', port: base + 2 };
  let config: string;
  let ebb: EbbServer;
  let haproxy: Haproxy;
  const sockets: Socket[] = [];
  const run = (...args: string[]) => runEbb(['--config', config, ...args]);

  const waitForHaproxy = async (server: string, status: RegExp) => {
    const deadline = Date.now() + 10_000;
    let last = '';
    while (Date.now() < deadline) {
      last = (await haproxy.stats())[server]?.status ?? '';
      if (status.test(last)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`haproxy never showed ${server} as ${status} (last: ${last})`);
  };

  before(async () => {
    config = ws.config('pool.yaml', {
      pool: { name: `hap${base}`, fqdn: `hap${base}.ebb.test` },
      store: `sqlite:${ws.dir}/state.db`,
      api: { listen: `127.0.0.1:${base + 3}` },
      agent: { localState: `${ws.dir}/local` },
      members,
    });
    ebb = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    haproxy = await Haproxy.start(
      ws.dir,
      frontend,
      members.map((m) => ({
        name: m.id,
        address: m.address,
        port: servicePort,
        agentPort,
        agentSend: 'web',
      })),
    );
    await waitForHaproxy('m1', /^UP/);
    await waitForHaproxy('m2', /^UP/);
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await haproxy?.stop();
    await ebb?.stop('SIGKILL');
    ws.cleanup();
  });

  it('a paused member gets no new connection from HAProxy while its existing ones keep flowing', async () => {
    for (let i = 0; i < 10; i++) sockets.push(await openSocket(frontend.host, frontend.port));
    for (const socket of sockets) assert.equal(await roundTrip(socket, 'hi\n'), 'hi\n');
    const before = JSON.parse((await run('status', '--json')).stdout) as PoolStatus;
    const m1Before = before.members[0]!.services[0]!.sessions;
    assert.ok(m1Before > 0, 'round robin put sessions on m1');

    assert.equal((await run('pause', 'm1', '--service', 'web')).code, 0);
    await waitForHaproxy('m1', /DRAIN/);
    const statsBefore = (await haproxy.stats()).m1!;

    const fresh: Socket[] = [];
    for (let i = 0; i < 30; i++) fresh.push(await openSocket(frontend.host, frontend.port));
    for (const socket of fresh)
      assert.equal(await roundTrip(socket, 'new\n'), 'new\n', 'every new connection is served');
    sockets.push(...fresh);

    const statsAfter = (await haproxy.stats()).m1!;
    assert.equal(statsAfter.stot, statsBefore.stot, 'HAProxy sent no new connection to m1');
    assert.equal(statsAfter.econ, statsBefore.econ, 'and did not even try (no connection errors)');
    for (const socket of sockets.slice(0, 10)) assert.equal(await roundTrip(socket, 'still\n'), 'still\n');
    const afterwards = JSON.parse((await run('status', '--json')).stdout) as PoolStatus;
    assert.equal(afterwards.members[0]!.services[0]!.sessions, m1Before, "m1's sessions all survive");
  });

  it('resume puts the member back in rotation; agent-send picks the service', async () => {
    assert.equal((await run('resume', 'm1')).code, 0);
    await waitForHaproxy('m1', /^UP/);
    // Pausing another service of m1 does not drain the web backend: HAProxy asks about "web".
    assert.equal((await run('pause', 'm1', '--service', 'other')).code, 0);
    await new Promise((r) => setTimeout(r, 600));
    assert.match((await haproxy.stats()).m1!.status!, /^UP/);
  });
});
