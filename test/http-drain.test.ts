/**
 * Drain semantics of the http listener (SPEC §10), end to end in process with real clients: a pause
 * refuses new connections, moves keep-alive clients off with `Connection: close`, lets WebSockets live
 * on until they close; the deadline closes them with 1012 (1001 towards the upstream) spread over
 * closeSpread, cuts requests, counts each as forced; resume undoes it. HTTP/2: the two-step GOAWAY.
 */
import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { HttpListener } from '../src/listeners/http/index.ts';
import { freePort } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';
import { RawClient, closed, eventually, nextMessage, openWebSocket, startUpstream } from './http-support.ts';

const host = '127.0.0.1';

describe('http listener: pause, drain, deadline, resume', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let listener: HttpListener;
  let port = 0;
  /** Session counts as onChange saw them, in order (drain detection reads these). */
  const seen: number[] = [];
  before(async () => {
    upstream = await startUpstream();
    port = await freePort();
    listener = new HttpListener({
      host,
      port,
      upstream: { host, port: upstream.port },
      closeSpreadMs: 600,
      onChange: () => seen.push(listener.stats().sessions),
    });
    await listener.open(false);
  });
  after(async () => {
    await listener.destroy();
    await upstream.close();
  });

  const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: ebb.test\r\n\r\n`;

  it('20 WebSockets and keep-alive connections survive a pause; new connections are refused; drained when the last WebSocket closes', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 20 }, () => openWebSocket(`ws://${host}:${port}/ws`)),
    );
    // Two keep-alive connections with a request in flight at the pause, one idle, one that has not sent yet.
    const busy = await Promise.all([RawClient.connect(host, port), RawClient.connect(host, port)]);
    for (const c of busy) {
      c.send(request('/headers'));
      await c.responses(1);
      c.send(request('/delay?ms=400'));
    }
    const idle = await RawClient.connect(host, port);
    idle.send(request('/headers'));
    await idle.responses(1);
    const fresh = await RawClient.connect(host, port);
    await eventually(() => listener.stats().sessions === 22, '20 websockets + 2 requests');

    await listener.refuse();
    assert.equal(listener.state, 'refusing');
    assert.equal(await tryConnect(host, port), 'ECONNREFUSED');

    // The idle kept-alive connection is closed at once, without an answer to anything.
    assert.equal(await idle.closedWithin(1000), true, 'idle keep-alive connection still open');
    // The busy ones get their answer, marked as the last, and are closed after it.
    for (const c of busy) {
      const heads = await c.responses(2);
      assert.match(heads[1]!, /^HTTP\/1\.1 200 /);
      assert.match(heads[1]!, /\r\nconnection: close/i);
      assert.equal(await c.closedWithin(1000), true, 'busy connection not closed after its response');
    }
    // The one that connected before the pause still gets its first request answered, as its last.
    fresh.send(request('/headers'));
    const [freshHead] = await fresh.responses(1);
    assert.match(freshHead!, /^HTTP\/1\.1 200 /);
    assert.match(freshHead!, /\r\nconnection: close/i);
    assert.equal(await fresh.closedWithin(1000), true);

    // WebSockets go on.
    await eventually(() => listener.stats().sessions === 20, 'only the websockets left');
    for (const [i, ws] of sockets.entries()) {
      ws.send(`still here ${i}`);
      assert.equal(await nextMessage(ws), `still here ${i}`);
    }
    assert.equal(listener.stats().idleConnections, 0);

    // Drained once the last WebSocket closes, with nothing forced.
    for (const ws of sockets.slice(0, 19)) ws.close(1000);
    await eventually(() => listener.stats().sessions === 1, 'one websocket left');
    seen.length = 0;
    sockets[19]!.close(1000);
    await eventually(() => seen.includes(0), 'onChange reported 0 sessions');
    assert.equal(listener.stats().forced, 0);
    assert.equal(listener.stats().byKind.websockets, 0);
  });

  it('resume accepts again and keeps connections alive without Connection: close', async () => {
    await listener.accept();
    assert.equal(listener.state, 'accepting');
    const client = await RawClient.connect(host, port);
    client.send(request('/headers'));
    client.send(request('/headers'));
    const heads = await client.responses(2);
    for (const head of heads) assert.doesNotMatch(head, /\r\nconnection: close/i);
    assert.equal(await client.closedWithin(200), false);
    client.destroy();
  });

  it('deadline: 1012 to every client, 1001 to the upstream, spread over closeSpread, requests cut, each forced', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 20 }, () => openWebSocket(`ws://${host}:${port}/ws`)),
    );
    await eventually(() => upstream.log.wsOpen === 20, 'upstream has 20 websockets');
    const hanging = fetch(`http://${host}:${port}/hang`);
    await eventually(() => listener.stats().sessions === 21, '21 sessions');
    const forcedBefore = listener.stats().forced;
    upstream.log.wsCloseCodes.length = 0;
    await listener.refuse();

    const closedAt: number[] = [];
    const codes = sockets.map((ws) =>
      closed(ws).then((c) => {
        closedAt.push(Date.now());
        return c;
      }),
    );
    const ended = await listener.endSessions();
    assert.equal(ended, 21);
    for (const c of await Promise.all(codes)) assert.equal(c.code, 1012);
    const res = await hanging;
    assert.equal(res.status, 503);
    await res.text();
    const spread = Math.max(...closedAt) - Math.min(...closedAt);
    assert.ok(spread >= 300, `closes not spread (${spread} ms over a 600 ms closeSpread)`);
    assert.equal(listener.stats().forced - forcedBefore, 21);
    assert.equal(listener.stats().sessions, 0);
    await eventually(() => upstream.log.wsCloseCodes.length === 20, 'upstream saw 20 closes');
    assert.deepEqual([...new Set(upstream.log.wsCloseCodes)], [1001]);
    assert.equal(listener.state, 'refusing', 'endSessions does not change the state');

    await listener.accept();
    assert.equal((await fetch(`http://${host}:${port}/headers`)).status, 200);
  });

  it('HTTP/2: two-step GOAWAY on pause; the open stream finishes', async () => {
    const session = connectHttp2(`http://${host}:${port}`);
    const goaways: number[] = [];
    session.on('goaway', (_code, lastStreamId) => goaways.push(lastStreamId));
    session.on('error', () => {});
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': '/delay?ms=400' });
      let status = 0;
      let body = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (d: Buffer) => (body += d.toString()));
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
    });
    await eventually(() => listener.stats().byKind.requests === 1, 'stream in flight');
    await listener.refuse();
    const result = await answer;
    assert.equal(result.status, 200);
    assert.deepEqual(JSON.parse(result.body), { delayed: true });
    await eventually(() => goaways.length >= 2, 'two GOAWAY frames');
    assert.equal(goaways[0], 2 ** 31 - 1, 'first GOAWAY: the largest stream id (RFC 9113 §6.8)');
    assert.equal(goaways[1], 1, 'second GOAWAY: the last stream processed');
    await eventually(() => session.closed || session.destroyed, 'session closed');
    await listener.accept();
  });

  it('a WebSocket that lives through a pause ends when the upstream closes it', async () => {
    const ws = await openWebSocket(`ws://${host}:${port}/ws`);
    await listener.refuse();
    ws.send('x');
    assert.equal(await nextMessage(ws), 'x');
    await upstream.close();
    assert.equal((await closed(ws)).code, 1006);
    await eventually(() => listener.stats().sessions === 0, 'session gone');
    upstream = await startUpstream(); // for after(): the listener is destroyed before it is used
  });
});
