import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { tcpService, testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { closeSocket, closedByPeer, openSocket, roundTrip, tryConnect } from './harness/tcp-sessions.ts';

/**
 * The drain core as a user meets it: `ebb up` in its own process, the `ebb` CLI, real TCP sessions.
 * Pool: 3 members × 2 tcp echo services (alpha, beta).
 */
describe('drain core: pause, drain, guard, restarts', () => {
  const ws = new Workspace();
  let pool: TestPool;
  let config: string;
  let server: EbbServer;
  const sockets: Socket[] = [];
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const status = async () => JSON.parse((await ebb('status', '--json')).stdout) as PoolStatus;
  const service = async (member: string, id: string) =>
    (await status()).members.find((m) => m.id === member)!.services.find((s) => s.id === id)!;
  const waitForStatus = async (check: (s: PoolStatus) => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    let last: PoolStatus | undefined;
    while (Date.now() < deadline) {
      last = await status();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${what}: not reached; last status ${JSON.stringify(last)}`);
  };

  before(async () => {
    pool = testPool({
      portBase: await freePortRange(32),
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [
        { id: 'alpha' },
        { id: 'beta' },
        { id: 'gamma', startup: 'manual' },
        { id: 'delta', startup: 'disabled' },
      ],
    });
    config = ws.file('pool.yaml', pool.yaml);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await server?.stop('SIGKILL');
    ws.cleanup();
  });

  it('status shows every member and service, started by startup type', async () => {
    const s = await status();
    assert.equal(s.members.length, 3);
    for (const member of s.members) {
      assert.equal(member.agent, 'up');
      const byId = Object.fromEntries(member.services.map((x) => [x.id, x]));
      assert.equal(byId.alpha!.state, 'running');
      assert.equal(byId.alpha!.accepting, true);
      assert.equal(byId.gamma!.state, 'stopped', 'manual services stay stopped');
      assert.equal(byId.delta!.state, 'stopped', 'disabled services stay stopped');
    }
    const table = await ebb('status', '--wide'); // every column: the layout this test reads
    assert.equal(table.code, 0);
    assert.match(table.stdout, /m1\s+127\.0\.\d+\.1\s+up\s+alpha\s+running/);
  });

  it('pause refuses new connects at once while 50 sessions go on echoing', async () => {
    const m1 = pool.members[0]!;
    for (let i = 0; i < 50; i++) sockets.push(await openSocket(m1.address, m1.ports.alpha!));
    await waitForStatus((s) => s.members[0]!.services[0]!.sessions === 50, '50 sessions counted');

    const pause = await ebb('pause', 'm1', '--service', 'alpha', '--reason', 'patch KB123');
    assert.equal(pause.code, 0, pause.stderr);
    // The command has returned: from now on every new connect is refused.
    for (let i = 0; i < 20; i++) assert.equal(await tryConnect(m1.address, m1.ports.alpha!), 'ECONNREFUSED');
    assert.equal(
      await tryConnect(m1.address, m1.ports.beta!),
      'connected',
      'the other service of the member accepts',
    );
    for (const other of pool.members.slice(1))
      assert.equal(await tryConnect(other.address, other.ports.alpha!), 'connected');
    for (const [i, socket] of sockets.entries())
      assert.equal(await roundTrip(socket, `still here ${i}\n`), `still here ${i}\n`);

    const alpha = await service('m1', 'alpha');
    assert.equal(alpha.state, 'paused');
    assert.equal(alpha.accepting, false);
    assert.equal(alpha.sessions, 50);
    assert.equal(alpha.drained, false);
  });

  it('the session count falls exactly as clients hang up, and drained comes at 0', async () => {
    for (const socket of sockets.splice(0, 20)) await closeSocket(socket);
    await waitForStatus((s) => s.members[0]!.services[0]!.sessions === 30, 'count 30');
    const mid = await service('m1', 'alpha');
    assert.equal(mid.drained, false);
    for (const socket of sockets.splice(0)) await closeSocket(socket);
    const s = await waitForStatus((x) => x.members[0]!.services[0]!.sessions === 0, 'count 0');
    const alpha = s.members[0]!.services[0]!;
    assert.equal(alpha.drained, true);
    assert.equal(alpha.forced, 0);
    assert.equal(s.members[0]!.readyForOffline, false, 'beta still runs');
  });

  it('ebb drain pauses the rest of the member and exits 0 once it is ready for offline', async () => {
    const m1 = pool.members[0]!;
    const held = await openSocket(m1.address, m1.ports.beta!);
    await waitForStatus((s) => s.members[0]!.services[1]!.sessions === 1, 'beta holds 1 session');
    const impatient = await ebb('drain', 'm1', '--timeout', '1s');
    assert.equal(impatient.code, 3, 'a drain that times out exits 3');
    assert.match(impatient.stderr, /1 session\(s\) left/);
    const drain = runEbb(['--config', config, 'drain', 'm1', '--timeout', '20s']);
    await waitForStatus((s) => s.members[0]!.services[1]!.state === 'paused', 'beta paused');
    assert.equal(await roundTrip(held, 'ping\n'), 'ping\n');
    await closeSocket(held);
    const result = await drain;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /ready for offline/);
    assert.equal((await status()).members[0]!.readyForOffline, true);
  });

  it('pausing the last accepting member exits 4 and changes nothing', async () => {
    assert.equal((await ebb('pause', 'm2', '--service', 'alpha')).code, 0);
    const before = await service('m3', 'alpha');
    const refused = await ebb('pause', 'm3', '--service', 'alpha');
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /capacity guard/);
    const afterwards = await service('m3', 'alpha');
    assert.equal(afterwards.state, 'running');
    assert.equal(afterwards.accepting, before.accepting);
    assert.equal(await tryConnect(pool.members[2]!.address, pool.members[2]!.ports.alpha!), 'connected');
    const audit = JSON.parse((await ebb('audit', '--json')).stdout) as Array<{
      action: string;
      result: string;
      member: string;
    }>;
    assert.ok(audit.some((r) => r.action === 'pause' && r.member === 'm3' && r.result === 'refused'));
  });

  it('after kill -9 and a restart, paused services are still paused and running ones run', async () => {
    await server.stop('SIGKILL');
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    const s = await status();
    const state = (m: number, id: string) => s.members[m]!.services.find((x) => x.id === id)!.state;
    assert.equal(state(0, 'alpha'), 'paused');
    assert.equal(state(0, 'beta'), 'paused');
    assert.equal(state(1, 'alpha'), 'paused');
    assert.equal(state(1, 'beta'), 'running');
    assert.equal(state(2, 'alpha'), 'running');
    assert.equal(await tryConnect(pool.members[0]!.address, pool.members[0]!.ports.alpha!), 'ECONNREFUSED');
    assert.equal(await tryConnect(pool.members[1]!.address, pool.members[1]!.ports.beta!), 'connected');
  });

  it('a manual service stays stopped until started; a disabled one cannot be started', async () => {
    assert.equal((await service('m3', 'gamma')).state, 'stopped');
    const start = await ebb('start', 'm3', '--service', 'gamma');
    assert.equal(start.code, 0, start.stderr);
    assert.equal((await service('m3', 'gamma')).state, 'running');
    assert.equal(await tryConnect(pool.members[2]!.address, pool.members[2]!.ports.gamma!), 'connected');

    const disabled = await ebb('start', 'm3', '--service', 'delta');
    assert.equal(disabled.code, 1);
    assert.match(disabled.stderr, /disabled/);
    assert.equal((await service('m3', 'delta')).state, 'stopped');
    assert.equal(await tryConnect(pool.members[2]!.address, pool.members[2]!.ports.delta!), 'ECONNREFUSED');

    // A manual service goes back to stopped when its agent restarts.
    await server.stop('SIGKILL');
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    assert.equal((await service('m3', 'gamma')).state, 'stopped');
  });

  it('a deadline ends the remaining sessions and counts them as forced', async () => {
    const m3 = pool.members[2]!;
    assert.equal((await ebb('resume', 'm1')).code, 0);
    const held = [await openSocket(m3.address, m3.ports.beta!), await openSocket(m3.address, m3.ports.beta!)];
    await waitForStatus((s) => s.members[2]!.services[1]!.sessions === 2, '2 sessions');
    const pause = await ebb('pause', 'm3', '--service', 'beta', '--deadline', '1s');
    assert.equal(pause.code, 0, pause.stderr);
    await Promise.all(held.map((socket) => closedByPeer(socket)));
    const s = await waitForStatus((x) => x.members[2]!.services[1]!.forced === 2, 'forced 2');
    const beta = s.members[2]!.services[1]!;
    assert.equal(beta.sessions, 0);
    assert.equal(beta.drained, true);
    assert.equal(beta.state, 'paused');
  });

  it('stop --graceful waits for the last session, then the service is stopped', async () => {
    const m2 = pool.members[1]!;
    const held = await openSocket(m2.address, m2.ports.beta!);
    await waitForStatus((s) => s.members[1]!.services[1]!.sessions === 1, '1 session');
    const stop = await ebb('stop', 'm2', '--service', 'beta', '--graceful');
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await service('m2', 'beta')).state, 'stopping');
    assert.equal(await tryConnect(m2.address, m2.ports.beta!), 'ECONNREFUSED');
    assert.equal(await roundTrip(held, 'last words\n'), 'last words\n');
    await closeSocket(held);
    await waitForStatus((s) => s.members[1]!.services[1]!.state === 'stopped', 'stopped');
  });
});

describe('bad config', () => {
  it('a bad port exits 2 and names the field', async () => {
    const ws = new Workspace();
    try {
      const config = ws.config('bad.yaml', {
        pool: { name: 'p', fqdn: 'p.ebb.test' },
        members: [{ id: 'a', address: '127.0.0.1', services: [tcpService('s', 70_000)] }],
      });
      const result = await runEbb(['up', config], { cwd: ws.dir });
      assert.equal(result.code, 2);
      assert.match(result.stderr, /members\[0\]\.services\[0\]\.listeners\[0\]\.port: must be 1-65535/);
    } finally {
      ws.cleanup();
    }
  });
});
