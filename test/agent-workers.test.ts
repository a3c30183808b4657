import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';
import { RawClient } from './http-support.ts';

/**
 * `agent: { workers: 2 }` through `ebb up` (SPEC §13): a tcp proxy listener to a real upstream on two
 * threads. 200 connections held on m1 at once are counted exactly in status (the threads' sums); a
 * pause refuses new connects on every thread while they go on; they close and the member drains; a
 * resume accepts again.
 */
describe('ebb up with agent.workers: 2', () => {
  const ws = new Workspace('ebb-workers-');
  const net = loopbackNet();
  let base: number;
  let config: string;
  let server: EbbServer;
  let upstream: Server;
  const address = (i: number) => `127.0.${net}.${i}`;
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const echo = async (): Promise<ServiceStatusView> => {
    const pool = (await (await fetch(`http://127.0.0.1:${base + 1}/v1/pool`)).json()) as PoolStatus;
    return pool.members[0]!.services.find((s) => s.id === 'echo')!;
  };
  const until = async (check: (s: ServiceStatusView) => boolean, what: string) => {
    let last: ServiceStatusView | undefined;
    for (let i = 0; i < 300; i++) {
      last = await echo();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`${what}: not reached; last ${JSON.stringify(last)}`);
  };

  before(async () => {
    base = await freePortRange(4);
    upstream = createServer((s) => {
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
      s.on('error', () => s.destroy());
    });
    await new Promise<void>((r) => upstream.listen(base + 3, '127.0.0.1', () => r()));
    config = ws.config('pool.yaml', {
      pool: { name: `wk${base}`, fqdn: `wk${base}.ebb.test` },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 2}` },
      api: { listen: `127.0.0.1:${base + 1}` },
      agent: { localState: `${ws.dir}/local`, workers: 2 },
      members: loopbackMembers(2, net, () => [
        { id: 'echo', listeners: [{ protocol: 'tcp', port: base, upstream: `127.0.0.1:${base + 3}` }] },
      ]),
    });
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await server?.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
    ws.cleanup();
  });

  it('200 held connections through a pause on two threads; counted exactly; drained; resumed', async () => {
    const clients = await Promise.all(Array.from({ length: 200 }, () => RawClient.connect(address(1), base)));
    for (const [i, c] of clients.entries()) c.send(`hello ${i}\n`);
    for (const [i, c] of clients.entries()) await c.waitFor((r) => r.includes(`hello ${i}\n`));
    const counted = await until((s) => s.sessions >= 200, '200 sessions counted');
    assert.equal(counted.sessions, 200, 'no connection counted twice');

    const pause = await ebb('pause', 'm1', '--service', 'echo');
    assert.equal(pause.code, 0, pause.stderr);
    // Connects from fresh source ports: the kernel spreads them over both threads' sockets.
    for (let i = 0; i < 20; i++) {
      const outcome = await tryConnect(address(1), base);
      assert.equal(outcome, 'ECONNREFUSED', `connect ${i} after the pause returned`);
    }
    assert.equal(await tryConnect(address(2), base), 'connected', 'm2 takes new connections');
    for (const [i, c] of clients.entries()) c.send(`again ${i}\n`);
    for (const [i, c] of clients.entries()) await c.waitFor((r) => r.includes(`again ${i}\n`));
    const paused = await echo();
    assert.equal(paused.state, 'paused');
    assert.equal(paused.sessions, 200);

    for (const c of clients) c.socket.end();
    const drained = await until((s) => s.drained, 'drained');
    assert.equal(drained.forced, 0);
    assert.equal(drained.accepted, 200);

    const resume = await ebb('resume', 'm1', '--service', 'echo');
    assert.equal(resume.code, 0, resume.stderr);
    assert.equal(await tryConnect(address(1), base), 'connected');
  });
});
