/**
 * The http listener as a reverse proxy (SPEC §10), driven in process with real clients: curl, Node's
 * fetch, WebSocket and http2 clients, and raw sockets. Drain semantics: test/http-drain.test.ts; TLS:
 * test/http-tls.test.ts; bad input: test/http-hostile-input.test.ts.
 */
import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { HttpListener } from '../src/listeners/http/index.ts';
import { freePort } from './harness/ports.ts';
import {
  RawClient,
  closed,
  eventually,
  nextMessage,
  openWebSocket,
  parseResponses,
  run,
  startUpstream,
} from './http-support.ts';

const host = '127.0.0.1';

describe('http listener: proxying', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let listener: HttpListener;
  let port = 0;
  let base = '';
  before(async () => {
    upstream = await startUpstream();
    port = await freePort();
    listener = new HttpListener({
      host,
      port,
      upstream: { host, port: upstream.port },
      limits: { upstreamHeadersTimeoutMs: 500 },
    });
    await listener.open(false);
    base = `http://${host}:${port}`;
  });
  after(async () => {
    await listener.destroy();
    await upstream.close();
  });

  it('forwards with X-Forwarded-For, X-Forwarded-Proto and Forwarded appended, hop-by-hop fields dropped (curl)', async () => {
    const r = await run('curl', [
      '-s',
      `${base}/headers`,
      '-H',
      'Connection: keep-alive, X-Drop',
      '-H',
      'X-Drop: secret',
      '-H',
      'Keep-Alive: timeout=5',
      '-H',
      'TE: trailers',
      '-H',
      'Proxy-Connection: keep-alive',
      '-H',
      'X-Forwarded-For: 192.0.2.7',
      '-H',
      'X-Forwarded-Proto: https',
      '-H',
      'Forwarded: for=192.0.2.7;proto=https',
      '-H',
      'X-Keep: kept',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as { headers: Record<string, string> };
    for (const gone of ['x-drop', 'keep-alive', 'te', 'proxy-connection'])
      assert.equal(seen.headers[gone], undefined, gone);
    assert.equal(seen.headers['x-keep'], 'kept');
    assert.equal(seen.headers['x-forwarded-for'], '192.0.2.7, 127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(
      seen.headers['forwarded'],
      `for=192.0.2.7;proto=https, for=127.0.0.1;host="127.0.0.1:${port}";proto=http`,
    );
    assert.equal(seen.headers['host'], `127.0.0.1:${port}`);
  });

  it("drops the upstream's hop-by-hop response fields (RFC 9110 §7.6.1)", async () => {
    const res = await fetch(`${base}/hop`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-secret'), null);
    // Node writes this hop's own Keep-Alive (timeout=30); the upstream's timeout=1 must not pass.
    assert.notEqual(res.headers.get('keep-alive'), 'timeout=1');
    assert.equal(res.headers.get('proxy-connection'), null);
    assert.deepEqual(await res.json(), { ok: true });
  });

  it('streams bodies both ways without waiting for their end', async () => {
    // Download: the first part arrives before the upstream has sent the second.
    const res = await fetch(`${base}/slow-body`);
    const reader = res.body!.getReader();
    const started = Date.now();
    const first = await reader.read();
    assert.equal(Buffer.from(first.value!).toString(), 'first;');
    assert.ok(Date.now() - started < 250, 'first chunk was held back');
    let rest = '';
    for (let part = await reader.read(); !part.done; part = await reader.read())
      rest += Buffer.from(part.value).toString();
    assert.equal(rest, 'second');

    // Upload: the upstream sees the first byte while the client is still sending (chunked, no length).
    const client = await RawClient.connect(host, port);
    client.send(`POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    await new Promise((r) => setTimeout(r, 300));
    const sentRestAt = Date.now();
    client.send('6\r\n world\r\n0\r\n\r\n');
    const [response] = parseResponses(await client.waitFor((t) => parseResponses(t).length === 1));
    const upload = JSON.parse(response!.body) as { size: number; firstByteAt: number };
    assert.equal(upload.size, 11);
    assert.ok(upload.firstByteAt < sentRestAt, 'the upstream got nothing before the whole body');
    client.destroy();
  });

  it('keeps connections alive and answers pipelined requests in order (raw socket)', async () => {
    const client = await RawClient.connect(host, port);
    client.send(`GET /headers?n=1 HTTP/1.1\r\nHost: a\r\n\r\n`);
    await client.responses(1);
    assert.equal(listener.stats().idleConnections >= 1, true);
    client.send(
      `GET /headers?n=2 HTTP/1.1\r\nHost: a\r\n\r\nGET /headers?n=3 HTTP/1.1\r\nHost: a\r\n\r\nGET /headers?n=4 HTTP/1.1\r\nHost: a\r\n\r\n`,
    );
    await client.responses(4);
    const bodies = parseResponses(client.received).map((r) => (JSON.parse(r.body) as { url: string }).url);
    assert.deepEqual(bodies, ['/headers?n=1', '/headers?n=2', '/headers?n=3', '/headers?n=4']);
    assert.equal(client.ended, false, 'the connection was closed');
    client.destroy();
  });

  it('counts requests in flight as sessions, idle connections as a gauge', async () => {
    const before = listener.stats();
    const pending = fetch(`${base}/delay?ms=300`);
    await eventually(() => listener.stats().byKind.requests === 1, 'one request in flight');
    assert.equal(listener.stats().sessions, 1);
    assert.equal((await pending).status, 200);
    await eventually(() => listener.stats().sessions === 0, 'request done');
    assert.equal(listener.stats().accepted, before.accepted + 1);
  });

  it('tunnels WebSockets both ways and counts them as websockets (Node WebSocket)', async () => {
    const ws = await openWebSocket(`ws://${host}:${port}/ws`);
    await eventually(() => listener.stats().byKind.websockets === 1, 'one websocket');
    ws.send('ping');
    assert.equal(await nextMessage(ws), 'ping');
    const big = 'x'.repeat(200_000);
    ws.send(big);
    assert.equal((await nextMessage(ws)).length, big.length);
    ws.close(1000, 'bye');
    await closed(ws);
    await eventually(() => listener.stats().byKind.websockets === 0, 'websocket gone');
    await eventually(() => upstream.log.wsCloseCodes.includes(1000), 'the close reached the upstream');
  });

  it("passes on an upstream's refusal to upgrade", async () => {
    const client = await RawClient.connect(host, port);
    client.send(
      'GET /deny-upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await client.waitFor((t) => t.includes('denied'));
    assert.match(client.received, /^HTTP\/1\.1 403 /);
    assert.equal(await client.closedWithin(2000), true);
    await eventually(() => listener.stats().byKind.websockets === 0, 'refused upgrade gone');
  });

  it('tunnels CONNECT to the upstream', async () => {
    const client = await RawClient.connect(host, port);
    client.send('CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n');
    await client.waitFor((t) => t.includes('\r\n\r\n'));
    assert.match(client.received, /^HTTP\/1\.1 200 /);
    assert.match(client.received, /x-tunnel: yes/);
    await eventually(() => listener.stats().byKind.websockets === 1, 'tunnel counted');
    client.received = '';
    client.send('anything at all');
    await client.waitFor((t) => t === 'anything at all');
    client.destroy();
    await eventually(() => listener.stats().byKind.websockets === 0, 'tunnel gone');
    assert.equal(upstream.log.requests.at(-1)?.method, 'CONNECT');
    assert.equal(upstream.log.requests.at(-1)?.url, 'example.test:443');
  });

  it('speaks HTTP/2 with prior knowledge (h2c), each stream a request (curl and node:http2)', async () => {
    const r = await run('curl', [
      '-s',
      '--http2-prior-knowledge',
      '-w',
      '\n%{http_version}',
      `${base}/headers`,
    ]);
    const [body, version] = r.stdout.split('\n');
    assert.equal(version, '2');
    const seen = JSON.parse(body!) as { headers: Record<string, string> };
    assert.equal(seen.headers['host'], `127.0.0.1:${port}`);
    assert.equal(seen.headers['x-forwarded-proto'], 'http');

    const session = connectHttp2(base);
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': path });
        let status = 0;
        let text = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (d: Buffer) => (text += d.toString()));
        stream.on('end', () => resolve({ status, body: text }));
        stream.on('error', reject);
      });
    const inFlight = Promise.all([get('/delay?ms=300'), get('/delay?ms=300'), get('/delay?ms=300')]);
    await eventually(() => listener.stats().byKind.requests === 3, 'three streams in flight');
    assert.equal(listener.stats().connections >= 1, true);
    for (const r of await inFlight) assert.equal(r.status, 200);
    await eventually(() => listener.stats().sessions === 0, 'streams done');
    assert.equal(listener.stats().idleConnections >= 1, true, 'an idle HTTP/2 session is idle');
    session.close();
  });

  it('answers 504 when the upstream does not answer in time', async () => {
    const res = await fetch(`${base}/hang`);
    assert.equal(res.status, 504);
    await res.text();
  });
});

describe('http listener: upstream down', () => {
  it('answers 502 and counts an upstream failure', async () => {
    const port = await freePort();
    const dead = await freePort();
    const listener = new HttpListener({ host, port, upstream: { host, port: dead } });
    await listener.open(false);
    try {
      const res = await fetch(`http://${host}:${port}/`);
      assert.equal(res.status, 502);
      assert.match(await res.text(), /upstream unreachable/);
      assert.equal(listener.stats().upstreamFailures, 1);
      assert.equal(listener.stats().sessions, 0);
    } finally {
      await listener.destroy();
    }
  });
});

describe('http listener: builtin:web', () => {
  it('proxies the demo app: page, health check, /ws echo and chat', async () => {
    const port = await freePort();
    const listener = new HttpListener({ host, port, upstream: 'builtin', member: 'fe07' });
    await listener.open(false);
    try {
      const page = await (await fetch(`http://${host}:${port}/`)).text();
      assert.match(page, /fe07/);
      assert.deepEqual(await (await fetch(`http://${host}:${port}/healthz`)).json(), {
        status: 'ok',
        member: 'fe07',
      });
      const chat = await openWebSocket(`ws://${host}:${port}/ws/chat?name=ann`);
      assert.equal(JSON.parse(await nextMessage(chat)).member, 'fe07');
      chat.send('hello room');
      assert.equal(JSON.parse(await nextMessage(chat)).text, 'hello room');
      chat.close();
      await closed(chat);
    } finally {
      await listener.destroy();
    }
  });
});
