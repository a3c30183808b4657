import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet } from './harness/pool-config.ts';
import { keepTcpMigrateReq } from './harness/migrate-req.ts';
import { freePortRange } from './harness/ports.ts';
import { closed, nextMessage, openWebSocket, RawClient, startUpstream } from './http-support.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SPEC §13 with the http front end on two worker threads (`agent.workers: 2`) in front of a real
 * upstream: WebSockets and a request in flight go on across a hand-off to a second `ebb up`, new
 * requests during the overlap are answered, and the old process exits once the last WebSocket closed.
 */
describe('hand-off of an http front end on two threads', () => {
  const ws = new Workspace('ebb-handoff-http-');
  const net = loopbackNet();
  const servers: EbbServer[] = [];
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base: number;
  let config: string;
  const address = `127.0.${net}.1`;
  const web = async (): Promise<ServiceStatusView> => {
    const pool = (await (await fetch(`http://127.0.0.1:${base + 1}/v1/pool`)).json()) as PoolStatus;
    return pool.members[0]!.services.find((s) => s.id === 'web')!;
  };
  const until = async (check: (s: ServiceStatusView) => boolean, what: string) => {
    let last: ServiceStatusView | undefined;
    for (let i = 0; i < 200; i++) {
      last = await web();
      if (check(last)) return last;
      await sleep(50);
    }
    assert.fail(`${what}: not reached; last ${JSON.stringify(last)}`);
  };

  let restoreMigrateReq: () => void = () => {};
  before(async () => {
    restoreMigrateReq = keepTcpMigrateReq();
    base = await freePortRange(4);
    upstream = await startUpstream();
    config = ws.config('pool.yaml', {
      pool: { name: `hh${base}`, fqdn: `hh${base}.ebb.test` },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 2}` },
      api: { listen: `127.0.0.1:${base + 1}` },
      agent: { localState: `${ws.dir}/local`, workers: 2 },
      members: loopbackMembers(1, net, () => [
        { id: 'web', listeners: [{ protocol: 'http', port: base, upstream: `127.0.0.1:${upstream.port}` }] },
      ]),
    });
    servers.push(await EbbServer.start(['up', config], /is up/, { cwd: ws.dir }));
  });

  after(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    await upstream?.close();
    ws.cleanup();
    restoreMigrateReq();
  });

  it('10 WebSockets and a chunked POST in flight go on; new requests are answered throughout', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 10 }, () => openWebSocket(`ws://${address}:${base}/ws`)),
    );
    const echoAll = async (text: string) => {
      for (const socket of sockets) socket.send(text);
      for (const [i, socket] of sockets.entries()) {
        assert.equal(await nextMessage(socket).catch((err: Error) => `WebSocket ${i}: ${err.message}`), text);
      }
    };
    await echoAll('before');
    const busy = await RawClient.connect(address, base);
    busy.send(`POST /upload HTTP/1.1\r\nHost: m1\r\nTransfer-Encoding: chunked\r\n\r\n`);
    await until((s) => s.sessions === 11, '10 WebSockets and a request counted');

    // Brand-new requests, each on a connection of its own, all through the hand-off.
    let answered = 0;
    const failures: string[] = [];
    let stop = false;
    const requests = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        try {
          const res = await fetch(`http://${address}:${base}/headers`, { headers: { connection: 'close' } });
          if (res.status === 200) answered++;
          else failures.push(`status ${res.status}`);
          await res.arrayBuffer();
        } catch (err) {
          failures.push(String((err as Error & { cause?: Error }).cause?.message ?? err));
        }
      }
    })();

    const old = servers[0]!;
    const successor = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    servers.push(successor);
    await old.waitForOutput(new RegExp(`pid ${successor.pid} took over`), 5000);
    await echoAll('after');
    busy.send('5\r\nhello\r\n0\r\n\r\n');
    const text = await busy.waitFor((r) => r.includes('"size":5'), 3000, 'the answer to the upload');
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(
      text.slice(0, text.indexOf('\r\n\r\n')),
      /\r\nconnection: close/i,
      'the old process lets it go',
    );
    assert.ok(await busy.closedWithin(3000));
    assert.equal((await until((s) => s.sessions === 10, 'the request done')).sessions, 10);
    assert.equal(old.running, true, 'the old process serves its WebSockets');

    stop = true;
    await requests;
    assert.deepEqual(failures, [], `new requests during the hand-off: ${answered} answered`);
    assert.ok(answered > 10, `requests ran through the hand-off (${answered})`);

    const closes = sockets.map((socket) => closed(socket));
    for (const socket of sockets) socket.close(1000);
    for (const close of closes) assert.equal((await close).code, 1000);
    assert.equal(await old.waitForExit(10_000), 0, old.output);
    // 10 WebSockets, the POST, and the loop's request if one was in flight at the yield (one at a time).
    assert.match(old.output, /1[12] session\(s\) ended by themselves, 0 forced/);
    const after = await until((s) => s.sessions === 0, 'nothing left');
    assert.equal(after.forced, 0);
    assert.equal((await fetch(`http://${address}:${base}/headers`)).status, 200);
  });
});
