import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

const clients = 100;

/**
 * Issue 9's "session that never ends", reproduced: clients that connect and send FIN with no data while
 * Ebb's event loop is held (SIGSTOP: a GC pause, an overloaded machine). When Ebb runs again it reads
 * each client's FIN before its connect to the upstream completes; a proxy that started forwarding only
 * on connect lost those FINs, the upstream connections stayed open, and the member never drained.
 */
describe('tcp proxy: clients that send FIN before the upstream connects', () => {
  const ws = new Workspace();
  let pool: TestPool;
  let config: string;
  let server: EbbServer;
  let echo: Server;
  const sockets: Socket[] = [];
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const alpha = async () => {
    const status = JSON.parse((await ebb('status', '--json')).stdout) as PoolStatus;
    return status.members.find((m) => m.id === 'm1')!.services.find((s) => s.id === 'alpha')!;
  };
  /** Polls the status until `check` holds; fails naming `what` and the last status. Bounded, not timed. */
  const waitFor = async (check: (s: Awaited<ReturnType<typeof alpha>>) => boolean, what: string) => {
    let last: Awaited<ReturnType<typeof alpha>> | undefined;
    for (let i = 0; i < 100; i++) {
      last = await alpha();
      if (check(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`${what}: not reached; last status of m1/alpha ${JSON.stringify(last)}`);
  };

  before(async () => {
    // The upstream: an echo server that answers a FIN with its own (allowHalfOpen false).
    echo = createServer((socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as AddressInfo).port;
    pool = testPool({
      members: 2, // m2 keeps the service accepting, so the capacity guard lets m1 pause
      portBase: await freePortRange(32),
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'alpha', upstream: `127.0.0.1:${echoPort}` }],
    });
    config = ws.file('pool.yaml', pool.yaml);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    if (server?.child.pid) process.kill(server.child.pid, 'SIGCONT');
    await server?.stop('SIGKILL');
    await new Promise<void>((resolve) => (echo ? echo.close(() => resolve()) : resolve()));
    ws.cleanup();
  });

  it('every session ends once Ebb runs again, and a pause then drains', async () => {
    const m1 = pool.members[0]!;
    const before = await waitFor((s) => s.state === 'running', 'alpha running');
    const pid = server.child.pid!;

    process.kill(pid, 'SIGSTOP');
    try {
      // The kernel completes each handshake into Ebb's accept queue; each client sends FIN at once.
      const closedByEbb: Array<Promise<void>> = [];
      await Promise.all(
        Array.from(
          { length: clients },
          () =>
            new Promise<void>((resolve, reject) => {
              const socket = connect({ host: m1.address, port: m1.ports.alpha! });
              sockets.push(socket);
              socket.once('error', reject);
              socket.once('connect', () => {
                closedByEbb.push(new Promise<void>((done) => socket.once('close', () => done())));
                socket.end();
                socket.once('finish', () => resolve());
              });
            }),
        ),
      );
      process.kill(pid, 'SIGCONT');

      await waitFor(
        (s) => s.accepted >= before.accepted + clients && s.sessions === 0,
        `all ${clients} sessions accepted and ended (their FIN passed on to the upstream)`,
      );
      let open = clients;
      for (const c of closedByEbb) void c.then(() => open--);
      await waitFor(() => open === 0, 'every client closed by Ebb after the upstream answered its FIN');
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    const pause = await ebb('pause', 'm1', '--service', 'alpha', '--reason', 'fin test');
    assert.equal(pause.code, 0, pause.stderr);
    const drained = await waitFor((s) => s.drained, 'm1/alpha drained after the pause');
    assert.equal(drained.sessions, 0);
    assert.equal(drained.forced, 0, 'nothing had to be forced');
    assert.equal(drained.upstreamFailures, before.upstreamFailures);
  });
});
