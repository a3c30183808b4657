import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

/**
 * The http front end through `ebb up` (SPEC §10): a `web` service on two members fronting `builtin:web`.
 * A WebSocket and a keep-alive connection live through a pause; new connections are refused; the
 * keep-alive one is told `Connection: close`; status counts sessions by kind; the drain completes when
 * the WebSocket closes.
 */
describe('http front end in a pool run by ebb up', () => {
  const ws = new Workspace('ebb-http-up-');
  const net = loopbackNet();
  let base: number;
  let config: string;
  let server: EbbServer;
  const address = (i: number) => `127.0.${net}.${i}`;

  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const web = async (): Promise<ServiceStatusView> => {
    const res = await fetch(`http://127.0.0.1:${base + 1}/v1/pool`);
    const pool = (await res.json()) as PoolStatus;
    return pool.members[0]!.services.find((s) => s.id === 'web')!;
  };
  const until = async (check: (s: ServiceStatusView) => boolean, what: string) => {
    let last: ServiceStatusView | undefined;
    for (let i = 0; i < 300; i++) {
      last = await web();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`${what}: not reached; last ${JSON.stringify(last)}`);
  };

  before(async () => {
    base = await freePortRange(4);
    config = ws.config('pool.yaml', {
      pool: { name: `web${base}`, fqdn: `web${base}.ebb.test` },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 2}` },
      api: { listen: `127.0.0.1:${base + 1}` },
      agent: { localState: `${ws.dir}/local` },
      members: loopbackMembers(2, net, () => [
        { id: 'web', listeners: [{ protocol: 'http', port: base, upstream: 'builtin:web' }] },
      ]),
    });
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await server?.stop();
    ws.cleanup();
  });

  it('a WebSocket and a keep-alive connection live through a pause; new connections are refused', async () => {
    const url = `http://${address(1)}:${base}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    const socket = new WebSocket(`ws://${address(1)}:${base}/ws`);
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve, { once: true });
      socket.addEventListener('error', reject, { once: true });
    });
    const echo = (text: string) =>
      new Promise<string>((resolve) => {
        socket.addEventListener('message', (e) => resolve(String(e.data)), { once: true });
        socket.send(text);
      });
    assert.equal(await echo('before'), 'before');
    await until((s) => s.sessionsByKind['websockets'] === 1, 'the WebSocket counted');

    // A keep-alive connection, opened before the pause.
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const req = request(`${url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal((await get()).status, 200);

    const pause = await ebb('pause', 'm1', '--service', 'web', '--reason', 'http test');
    assert.equal(pause.code, 0, pause.stderr);

    await assert.rejects(fetch(`${url}/healthz`), 'a new connection is refused while paused');
    assert.equal(await echo('during'), 'during', 'the WebSocket goes on');
    const paused = await web();
    assert.equal(paused.state, 'paused');
    assert.equal(paused.sessionsByKind['websockets'], 1);
    assert.equal(paused.drained, false);
    // The other member takes new connections.
    assert.equal((await fetch(`http://${address(2)}:${base}/healthz`)).status, 200);

    const status = await ebb('status', '--wide');
    assert.match(status.stdout, /1 websockets/, 'the wide status table shows sessions by kind');

    socket.close(1000);
    const drained = await until((s) => s.drained, 'drained once the WebSocket closed');
    assert.equal(drained.sessions, 0);
    assert.equal(drained.forced, 0);
    agent.destroy();

    const resume = await ebb('resume', 'm1', '--service', 'web');
    assert.equal(resume.code, 0, resume.stderr);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  });
});
