import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { closed, nextMessage, openWebSocket, RawClient } from './http-support.ts';

/**
 * The http front end through `ebb up` (SPEC §10; issue 10's end-to-end list): a `web` service on two
 * members fronting `builtin:web`. 20 WebSockets and two keep-alive connections on m1 live through its
 * pause: new connections are refused and go to m2; the idle keep-alive connection is closed at once, the
 * one with a request in flight gets `Connection: close` on that response and is closed after it; the
 * WebSockets go on. Closing some of them leaves the member draining; a deadline closes the rest with
 * 1012, each counted as forced in status and in the audit log; resume accepts again.
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

  it('20 WebSockets and two keep-alive connections through a pause, a deadline and a resume', async () => {
    const url = `http://${address(1)}:${base}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    const sockets = await Promise.all(
      Array.from({ length: 20 }, () => openWebSocket(`ws://${address(1)}:${base}/ws`)),
    );
    const echoAll = async (list: WebSocket[], text: string) => {
      for (const socket of list) socket.send(text);
      for (const socket of list) assert.equal(await nextMessage(socket), text);
    };
    await echoAll(sockets, 'before');
    await until((s) => s.sessionsByKind['websockets'] === 20, '20 WebSockets counted');

    // Two keep-alive connections opened before the pause: `idle` has had its answer; `busy` has sent the
    // head of a chunked request and nothing else, so its request is in flight across the pause.
    const idle = await RawClient.connect(address(1), base);
    idle.send(`GET /healthz HTTP/1.1\r\nHost: m1\r\n\r\n`);
    const [first] = await idle.responses(1);
    assert.match(first!, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(first!, /connection: close/i);
    const busy = await RawClient.connect(address(1), base);
    busy.send(`POST /echo HTTP/1.1\r\nHost: m1\r\nTransfer-Encoding: chunked\r\n\r\n`);
    await until((s) => s.sessionsByKind['requests'] === 1, 'the chunked request in flight');

    const pause = await ebb('pause', 'm1', '--service', 'web', '--reason', 'http test');
    assert.equal(pause.code, 0, pause.stderr);

    await assert.rejects(fetch(`${url}/healthz`), 'a new connection is refused while paused');
    assert.equal((await fetch(`http://${address(2)}:${base}/healthz`)).status, 200, 'm2 takes it');
    assert.ok(await idle.closedWithin(3000), 'the idle keep-alive connection is closed at once');
    await echoAll(sockets, 'during');

    busy.send('5\r\nhello\r\n0\r\n\r\n');
    const text = await busy.waitFor((r) => r.includes('hello'), 3000, 'the echoed body');
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /\r\nconnection: close/i, 'the response after the pause says Connection: close');
    assert.ok(await busy.closedWithin(3000), 'and the connection closes after it');

    const paused = await until(
      (s) => s.sessionsByKind['websockets'] === 20 && s.sessionsByKind['requests'] === 0,
      'paused with 20 WebSockets and no request',
    );
    assert.equal(paused.state, 'paused');
    assert.equal(paused.drained, false);
    const status = await ebb('status');
    assert.match(status.stdout, /20 websockets/, 'the status table shows sessions by kind');

    // Clients that close by themselves leave the member draining, not drained.
    for (const socket of sockets.slice(0, 15)) socket.close(1000);
    const draining = await until((s) => s.sessions === 5, '5 WebSockets left');
    assert.equal(draining.drained, false);
    assert.equal(draining.forced, 0);

    // The deadline: the 5 left get 1012 (Service Restart), each counted as forced.
    const rest = sockets.slice(15).map((socket) => closed(socket, 10_000));
    const deadline = await ebb('pause', 'm1', '--service', 'web', '--deadline', '1s');
    assert.equal(deadline.code, 0, deadline.stderr);
    for (const close of await Promise.all(rest)) assert.equal(close.code, 1012);
    const drained = await until((s) => s.drained, 'drained after the deadline');
    assert.equal(drained.sessions, 0);
    assert.equal(drained.forced, 5);
    const audit = await ebb('audit', '--json');
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /5 session\(s\) ended at the deadline/, 'the audit log has the forced count');

    const resume = await ebb('resume', 'm1', '--service', 'web');
    assert.equal(resume.code, 0, resume.stderr);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const again = await openWebSocket(`ws://${address(1)}:${base}/ws`);
    await echoAll([again], 'after');
    again.close(1000);
  });
});
