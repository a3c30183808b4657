/**
 * Hostile input (SPEC §8): nothing may crash or stall the server, and it must answer a valid query after.
 * Property runs are bounded in count; socket runs are bounded in count and time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import type { RecordType } from 'dns-packet';
import fc from 'fast-check';
import { DnsServer } from './dns-server.ts';
import {
  FQDN,
  askBytes,
  closed,
  frame,
  queryBytes,
  readReplies,
  sampleView,
  tcpConnect,
  tcpExchange,
  udpExchange,
} from './dns-test-support.ts';

const view = sampleView();

/** The pure path either drops the message or produces a response dns-packet can read, with the same id. */
function checkPure(msg: Buffer): void {
  const res = askBytes(view, msg);
  if (res === null) return;
  assert.equal(res.id, msg.readUInt16BE(0));
  assert.equal(res.type, 'response');
}

const validQueries = fc
  .record({
    name: fc.constantFrom(
      FQDN,
      `fe01.${FQDN}`,
      `_frontend._udp.${FQDN}`,
      `echo.${FQDN}`,
      'example.com',
      `x.${FQDN}`,
    ),
    type: fc.constantFrom<RecordType | number>('A', 'AAAA', 'SRV', 'SOA', 'NS', 255),
    edns: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
  })
  .map(({ name, type, edns }) => queryBytes(name, type, edns === undefined ? {} : { edns }));

/** A valid query with some bytes overwritten, some cut off, or some added. */
const mutatedQueries = fc
  .tuple(
    validQueries,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.uint8Array({ maxLength: 8 }),
  )
  .map(([query, writes, cut, tail]) => {
    const msg = Buffer.from(query);
    for (const [at, value] of writes) msg[at % msg.length] = value;
    const kept = cut === undefined ? msg : msg.subarray(0, cut % (msg.length + 1));
    return Buffer.concat([kept, Buffer.from(tail)]);
  });

/** Compression pointers at every name position, pointing anywhere, including at themselves. */
function pointerQueries(): Buffer[] {
  const base = queryBytes(FQDN, 'A');
  const out: Buffer[] = [];
  for (let target = 0; target <= base.length + 2; target++) {
    const question = Buffer.from(base);
    question.writeUInt16BE(0xc000 | target, 12);
    out.push(question.subarray(0, 18));
    // An additional record whose owner is a pointer; at target === base.length it points at itself.
    const record = Buffer.from([0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    record.writeUInt16BE(0xc000 | target, 0);
    const withRecord = Buffer.concat([base, record]);
    withRecord.writeUInt16BE(1, 10);
    out.push(withRecord);
  }
  return out;
}

describe('DNS fuzz: pure decode and answer', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => checkPure(Buffer.from(bytes))),
      {
        numRuns: 3000,
      },
    );
  });

  it('random bytes behind a plausible header', () => {
    const header = fc
      .tuple(
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 0x7fff }),
        fc.uint8Array({ maxLength: 300 }),
      )
      .map(([id, flags, rest]) => {
        const msg = Buffer.alloc(12 + rest.length);
        msg.writeUInt16BE(id, 0);
        msg.writeUInt16BE(flags, 2);
        msg.writeUInt16BE(1, 4);
        Buffer.from(rest).copy(msg, 12);
        return msg;
      });
    fc.assert(fc.property(header, checkPure), { numRuns: 3000 });
  });

  it('mutated valid queries', () => {
    fc.assert(
      fc.property(mutatedQueries, (msg) => checkPure(msg)),
      { numRuns: 3000 },
    );
  });

  it('compression pointers pointing at themselves and everywhere else', () => {
    for (const msg of pointerQueries()) checkPure(msg);
  });

  it('dns-packet itself rejects a self-pointing name instead of looping', () => {
    const msg = Buffer.from(queryBytes(FQDN, 'A'));
    msg.writeUInt16BE(0xc000 | 12, 12);
    assert.throws(() => dnsPacket.decode(msg));
  });
});

describe('DNS fuzz: live server', () => {
  let server: DnsServer;
  before(async () => {
    server = new DnsServer({
      listen: { host: '127.0.0.1', port: 0 },
      view: () => view,
      tcpIdleTimeoutMs: 500,
    });
    await server.start();
  });
  after(() => server.close());

  async function stillAnswers(): Promise<void> {
    const udp = await udpExchange(server.port, queryBytes(FQDN, 'A', { id: 31337 }), 1000);
    assert.ok(udp, 'UDP answer after the fuzz');
    assert.equal(dnsPacket.decode(udp).id, 31337);
    const tcp = await tcpExchange(server.port, queryBytes(FQDN, 'A', { id: 31338 }));
    assert.ok(tcp, 'TCP answer after the fuzz');
    assert.equal(dnsPacket.decode(tcp).id, 31338);
  }

  it('UDP: random and mutated datagrams, pointer loops', async () => {
    const samples = [
      ...fc.sample(fc.uint8Array({ minLength: 0, maxLength: 1500 }), 200).map((b) => Buffer.from(b)),
      ...fc.sample(mutatedQueries, 300),
      ...pointerQueries(),
      Buffer.alloc(65000, 0xc0),
    ];
    const { createSocket } = await import('node:dgram');
    const socket = createSocket('udp4');
    try {
      for (const msg of samples) {
        socket.send(msg, server.port, '127.0.0.1');
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      socket.close();
    }
    await stillAnswers();
  });

  it('TCP: random streams, mutated queries in frames, and bad prefixes', async () => {
    const streams = [
      ...fc.sample(fc.uint8Array({ minLength: 1, maxLength: 3000 }), 30).map((b) => Buffer.from(b)),
      ...fc
        .sample(fc.array(mutatedQueries, { minLength: 1, maxLength: 5 }), 30)
        .map((qs) => Buffer.concat(qs.filter((q) => q.length >= 12 && q.length < 65536).map(frame))),
      Buffer.from([0, 0]),
      Buffer.from([0, 5, 1, 2, 3, 4, 5]),
      Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(1000)]),
    ];
    const sockets = await Promise.all(streams.map(() => tcpConnect(server.port)));
    for (const [i, socket] of sockets.entries()) {
      socket.on('data', () => undefined);
      socket.on('error', () => undefined);
      socket.write(streams[i]!);
    }
    // Every connection ends: by a framing error, by the idle timeout, or after its answers.
    const results = await Promise.all(sockets.map((s) => closed(s, 3000)));
    for (const s of sockets) s.destroy();
    assert.ok(results.every(Boolean), 'every hostile connection was closed by the server');
    await stillAnswers();
  });

  it('TCP: a huge length prefix then silence is cut off by the idle timeout', async () => {
    const socket = await tcpConnect(server.port);
    socket.write(Buffer.from([0xff, 0xff, 0x12]));
    assert.equal(await closed(socket, 3000), true);
    await stillAnswers();
  });

  it('TCP: valid queries after garbage in the same frame stream still get answers', async () => {
    const socket = await tcpConnect(server.port);
    try {
      const garbage = Buffer.alloc(40, 0xc0);
      garbage.writeUInt32BE(0x12340000, 0); // id 0x1234, a plain query header, then pointers everywhere
      socket.write(Buffer.concat([frame(garbage), frame(queryBytes(FQDN, 'A', { id: 5 }))]));
      const replies = (await readReplies(socket, 2)).map(
        (r) => dnsPacket.decode(r) as dnsPacket.DecodedPacket & { rcode: string },
      );
      assert.deepEqual(
        replies.map((r) => [r.id, r.rcode]),
        [
          [0x1234, 'FORMERR'],
          [5, 'NOERROR'],
        ],
      );
    } finally {
      socket.destroy();
    }
  });
});
