/**
 * Bad and hostile input at the http listener's edge (SPEC §8, §10): malformed requests get 400/431 and
 * never reach the upstream (whose own parser counts anything malformed it sees: it must stay 0); slow
 * clients are cut; nothing crashes the process or drops another session. Ends with fast-check fuzzing
 * of the request edge: random bytes and mutated requests at a raw socket.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { HttpListener } from '../src/listeners/http/index.ts';
import { freePort } from './harness/ports.ts';
import { RawClient, eventually, nextMessage, openWebSocket, startUpstream } from './http-support.ts';

const host = '127.0.0.1';

describe('http listener: hostile input', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let listener: HttpListener;
  let port = 0;
  /** A session that must live through everything below. */
  let bystander: WebSocket;
  before(async () => {
    upstream = await startUpstream();
    port = await freePort();
    listener = new HttpListener({
      host,
      port,
      upstream: { host, port: upstream.port },
      limits: { headersTimeoutMs: 1000, requestTimeoutMs: 1500, maxHeaderSize: 8192, maxHeaderCount: 50 },
    });
    await listener.open(false);
    bystander = await openWebSocket(`ws://${host}:${port}/ws`);
  });
  after(async () => {
    bystander.close();
    await listener.destroy();
    await upstream.close();
  });

  async function stillFine(): Promise<void> {
    bystander.send('ok?');
    assert.equal(await nextMessage(bystander), 'ok?');
    assert.equal((await fetch(`http://${host}:${port}/headers`)).status, 200);
    assert.equal(upstream.log.clientErrors, 0, 'something malformed reached the upstream');
  }

  /** Sends `text`, half-closes, and returns the status line Ebb answered with ('' if none). */
  async function answer(text: string | Buffer): Promise<string> {
    const client = await RawClient.connect(host, port);
    client.send(text);
    await client.closedWithin(2000);
    client.destroy();
    return client.received.split('\r\n')[0] ?? '';
  }

  const malformed: Record<string, [request: string, status: number]> = {
    'Content-Length with Transfer-Encoding (smuggling, RFC 9112 §6.3)': [
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /headers HTTP/1.1\r\nHost: x\r\n\r\n',
      400,
    ],
    'two different Content-Lengths': [
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      400,
    ],
    'Transfer-Encoding not ending in chunked': [
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      400,
    ],
    'obfuscated Transfer-Encoding': [
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    'unknown transfer coding': [
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    'bare LF line ends': ['GET /headers HTTP/1.1\nHost: x\n\n', 400],
    'obsolete line folding': ['GET /headers HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n', 400],
    'control character in a value': ['GET /headers HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400],
    'NUL in the target': ['GET /he\0aders HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    'no Host (RFC 9112 §3.2)': ['GET /headers HTTP/1.1\r\n\r\n', 400],
    'two Hosts (RFC 9112 §3.2)': ['GET /headers HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    'oversized header': [`GET /headers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`, 431],
    'oversized request line': [`GET /${'a'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    'too many header fields': [
      `GET /headers HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 60 }, (_, i) => `X-H${i}: 1\r\n`).join('')}\r\n`,
      431,
    ],
  };
  for (const [name, [request, status]] of Object.entries(malformed)) {
    it(`${name}: ${status}, not forwarded`, async () => {
      const before = upstream.log.requests.length;
      assert.match(await answer(request), new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.equal(upstream.log.requests.length, before, 'forwarded to the upstream');
    });
  }

  it('invalid chunked encoding mid-body: 400, and the upstream never gets a complete request', async () => {
    const completed = upstream.log.completed;
    const client = await RawClient.connect(host, port);
    client.send('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    await new Promise((r) => setTimeout(r, 200));
    client.send('zz\r\nnot a chunk\r\n0\r\n\r\n');
    await client.closedWithin(2000);
    assert.match(client.received, /^HTTP\/1\.1 400 /);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(upstream.log.completed, completed);
    await eventually(() => listener.stats().byKind.requests === 0, 'request gone');
    await stillFine();
  });

  it('slowloris: a head dribbled in is cut with 408 after headersTimeout; others are not held up', async () => {
    const slow = await Promise.all(Array.from({ length: 30 }, () => RawClient.connect(host, port)));
    for (const c of slow) c.send('GET /headers HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => {
      for (const c of slow) if (!c.ended) c.send('X');
    }, 200);
    try {
      const started = Date.now();
      await stillFine();
      assert.ok(Date.now() - started < 500, 'a normal request waited behind the slow ones');
      for (const c of slow) assert.equal(await c.closedWithin(4000), true, 'slow head not cut');
      assert.ok(Date.now() - started < 4500);
      assert.match(slow[0]!.received, /^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
      for (const c of slow) c.destroy();
    }
  });

  it('a body dribbled in is cut after requestTimeout', async () => {
    const client = await RawClient.connect(host, port);
    client.send('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
    const drip = setInterval(() => client.send('x'), 100);
    try {
      assert.equal(await client.closedWithin(5000), true, 'slow body not cut');
    } finally {
      clearInterval(drip);
      client.destroy();
    }
    await eventually(() => listener.stats().byKind.requests === 0, 'request gone');
    await stillFine();
  });

  it('fuzz: random bytes and mutated requests never crash it, never reach the upstream malformed, never drop another session', async () => {
    const template = Buffer.from(
      'POST /upload?x=1 HTTP/1.1\r\nHost: ebb.test\r\nContent-Length: 11\r\nX-A: b\r\nConnection: keep-alive\r\n\r\nhello world' +
        'GET /headers HTTP/1.1\r\nHost: ebb.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    );
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
      fc.record({
        kind: fc.constant('delete' as const),
        at: fc.nat(),
        length: fc.integer({ min: 1, max: 8 }),
      }),
    );
    const mutated = fc.array(mutation, { minLength: 1, maxLength: 6 }).map((ms) => {
      let b = Buffer.from(template);
      for (const m of ms) {
        const at = m.at % (b.length + 1);
        if (m.kind === 'flip' && at < b.length) b[at] = m.byte;
        else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
      }
      return b;
    });
    const randomBytes = fc.uint8Array({ maxLength: 1024 }).map((a) => Buffer.from(a));
    const fieldish = fc
      .tuple(
        fc.string({ maxLength: 20 }),
        fc.string({ maxLength: 40 }),
        fc.constantFrom('GET', 'POST', 'PUT', 'CONNECT', 'PRI', 'G\0T'),
      )
      .map(([name, value, method]) =>
        Buffer.from(`${method} /headers HTTP/1.1\r\nHost: x\r\n${name}: ${value}\r\n\r\n`, 'utf8'),
      );
    const deadline = Date.now() + 60_000;
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, randomBytes, fieldish), async (bytes) => {
        if (Date.now() > deadline) return;
        const client = await RawClient.connect(host, port);
        client.send(bytes);
        client.socket.end();
        await client.closedWithin(3000);
        client.destroy();
        const status = client.received.split('\r\n')[0] ?? '';
        assert.ok(
          status === '' || /^HTTP\/1\.1 [1-5]\d\d /.test(status),
          `odd answer ${JSON.stringify(status)}`,
        );
      }),
      { numRuns: 300 },
    );
    await eventually(() => listener.stats().sessions === 1, 'only the bystander left', 5000);
    await stillFine();
  });
});
