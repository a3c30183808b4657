// Property tests: whatever the bytes and however they are split, the codec throws nothing but
// SipParseError, holds its limits, and frames the same messages.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  formatNameAddr,
  formatSipUri,
  formatVia,
  getHeaderValues,
  parseCSeq,
  parseDatagram,
  parseNameAddr,
  parseSipUri,
  parseVia,
  serializeMessage,
  SipParseError,
  SipStreamParser,
  validateRequest,
  validateResponse,
  type SipLimits,
  type SipMessage,
} from './index.ts';
import { allFixtures, semantic, sip } from './test-messages.ts';

const fixtures = Object.values(allFixtures);

/** Runs `f`; returns its value, or undefined when it threw a SipParseError; anything else fails the test. */
function onlySipErrors<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}

interface Outcome {
  messages: SipMessage[];
  errors: string[];
  pings: number;
  maxBuffered: number;
}

function streamParse(chunks: Buffer[], limits?: Partial<SipLimits>): Outcome {
  const out: Outcome = { messages: [], errors: [], pings: 0, maxBuffered: 0 };
  const parser = new SipStreamParser(
    {
      onMessage: (m) => out.messages.push(m),
      onError: (e) => {
        assert.ok(e instanceof SipParseError);
        out.errors.push(e.code);
      },
      onKeepAlive: () => out.pings++,
    },
    limits,
  );
  for (const c of chunks) {
    parser.push(c);
    out.maxBuffered = Math.max(out.maxBuffered, parser.buffered);
  }
  parser.end();
  return out;
}

function splitAt(buf: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (buf.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    chunks.push(buf.subarray(prev, c));
    prev = c;
  }
  chunks.push(buf.subarray(prev));
  return chunks;
}

// Bytes that matter to SIP grammar, mixed with anything.
const sipByte = fc.oneof(
  fc.constantFrom(
    0x0d,
    0x0a,
    0x20,
    0x09,
    0x3a,
    0x3b,
    0x2c,
    0x22,
    0x3c,
    0x3e,
    0x40,
    0x3d,
    0x5c,
    0x00,
    0xff,
    0x30,
  ),
  fc.integer({ min: 0, max: 255 }),
);

const mutation = fc.record({
  kind: fc.constantFrom('replace', 'insert', 'delete', 'truncate', 'duplicate'),
  at: fc.nat(),
  byte: sipByte,
  len: fc.integer({ min: 1, max: 40 }),
});

type Mutation = { kind: string; at: number; byte: number; len: number };

function mutate(buf: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(buf);
  for (const m of ms) {
    const at = m.at % (b.length + 1);
    if (m.kind === 'replace' && at < b.length) b[at] = m.byte;
    else if (m.kind === 'insert')
      b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'duplicate') b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at)]);
  }
  return b;
}

// Text built from SIP's own pieces reaches deeper than uniform bytes.
const sipText = fc
  .array(
    fc.constantFrom(
      'INVITE ',
      'SIP/2.0',
      ' 200 OK',
      'sip:',
      'sips:',
      'alice',
      '@',
      'example.com',
      '[2001:db8::1]',
      ':5060',
      ';branch=z9hG4bK1',
      ';tag=x',
      ';lr',
      ';rport',
      '\r\n',
      '\n',
      '\r\n\r\n',
      ' ',
      '\t',
      'Via: SIP/2.0/UDP ',
      'v: ',
      'Content-Length: ',
      'l: ',
      '0',
      '5',
      '12',
      'To: ',
      'From: ',
      'CSeq: 1 INVITE',
      'Call-ID: c',
      '"',
      '\\',
      '<',
      '>',
      ',',
      ';',
      '=',
      '?',
      '&',
      'abcde',
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(''));

const seed = process.env.SIP_FUZZ_SEED === undefined ? 20240607 : Number(process.env.SIP_FUZZ_SEED);
const params = (numRuns: number) => ({ numRuns, seed });

describe('fuzz', () => {
  test('random bytes: parseDatagram and the stream parser throw nothing but SipParseError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 1500 }),
          sipText.map((s) => Buffer.from(s)),
        ),
        (bytes) => {
          const buf = Buffer.from(bytes);
          const m = onlySipErrors(() => parseDatagram(buf));
          if (m) onlySipErrors(() => (m.kind === 'request' ? validateRequest(m) : validateResponse(m)));
          streamParse([buf]);
        },
      ),
      params(1500),
    );
  });

  test('mutated real messages: only SipParseError, and what parses round-trips', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...fixtures),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (fixture, ms) => {
          const buf = mutate(fixture, ms);
          const m = onlySipErrors(() => parseDatagram(buf));
          if (m === undefined) return;
          onlySipErrors(() => (m.kind === 'request' ? validateRequest(m) : validateResponse(m)));
          for (const v of getHeaderValues(m, 'Via')) onlySipErrors(() => parseVia(v));
          for (const name of ['From', 'To', 'Contact', 'Route', 'Record-Route']) {
            for (const v of getHeaderValues(m, name)) onlySipErrors(() => parseNameAddr(v));
          }
          // Parsed values are always safe to write back, and mean the same once read again.
          const wire = serializeMessage(m);
          assert.deepEqual(parseDatagram(wire), semantic(m));
          assert.deepEqual(streamParse([wire]).messages, [semantic(m)]);
        },
      ),
      params(2000),
    );
  });

  test('chunking never changes what the stream parser reports', () => {
    const piece = fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...fixtures) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(Buffer.from('\r\n\r\n'), Buffer.from('\r\n'), Buffer.from('\n')),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom(...fixtures), fc.array(mutation, { maxLength: 2 }))
          .map(([f, ms]) => mutate(f, ms)),
      },
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (pieces, points) => {
          const stream = Buffer.concat(pieces);
          const whole = streamParse([stream]);
          const split = streamParse(splitAt(stream, points));
          assert.deepEqual(split.messages, whole.messages);
          assert.deepEqual(split.errors, whole.errors);
          assert.equal(split.pings, whole.pings);
          assert.ok(whole.errors.length <= 1);
        },
      ),
      params(800),
    );
  });

  test('limits hold under random limits and chunking', () => {
    const limitsArb = fc.record({
      maxMessageSize: fc.integer({ min: 40, max: 1200 }),
      maxHeaders: fc.integer({ min: 1, max: 15 }),
      maxLineLength: fc.integer({ min: 10, max: 200 }),
      maxBodySize: fc.integer({ min: 1, max: 600 }),
    });
    fc.assert(
      fc.property(
        limitsArb,
        fc.array(fc.constantFrom(...fixtures), { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (limits, pieces, points) => {
          const stream = Buffer.concat(pieces);
          const out = streamParse(splitAt(stream, points), limits);
          assert.ok(out.maxBuffered <= limits.maxMessageSize, `buffered ${out.maxBuffered}`);
          for (const m of out.messages) {
            assert.ok(m.headers.length <= limits.maxHeaders);
            assert.ok(m.body.length <= limits.maxBodySize);
            for (const h of m.headers) assert.ok(h.name.length + h.value.length < limits.maxLineLength);
          }
          for (const p of pieces) {
            const m = onlySipErrors(() => parseDatagram(p, limits));
            if (m) assert.ok(p.length <= limits.maxMessageSize, 'an accepted message fits the size limit');
          }
        },
      ),
      params(800),
    );
  });

  test('a message of exactly N bytes is accepted if and only if N <= maxMessageSize', () => {
    fc.assert(
      fc.property(fc.integer({ min: 150, max: 3000 }), fc.integer({ min: 150, max: 3000 }), (size, max) => {
        const head = [
          'MESSAGE sip:a@example.com SIP/2.0',
          'Via: SIP/2.0/TCP h;branch=z9hG4bK1',
          'Content-Length: {len}',
        ];
        const bare = sip(head, '').length;
        const body = 'b'.repeat(Math.max(0, size - bare - String(size).length + 1));
        let msg = sip(head, body);
        while (msg.length > size && msg.length > bare)
          msg = sip(head, body.slice(0, body.length - (msg.length - size)));
        fc.pre(msg.length === size);
        const out = streamParse([msg], { maxMessageSize: max, maxBodySize: 65535 });
        assert.equal(out.messages.length === 1, size <= max, `size ${size} max ${max}: ${out.errors.join()}`);
      }),
      params(300),
    );
  });

  test('header field parsers: only SipParseError, and format → parse is stable', () => {
    const text = fc.oneof(sipText, fc.string({ maxLength: 80 }));
    fc.assert(
      fc.property(text, (s) => {
        const u = onlySipErrors(() => parseSipUri(s));
        if (u) assert.deepEqual(parseSipUri(formatSipUri(u)), u);
        const v = onlySipErrors(() => parseVia(s));
        if (v) assert.deepEqual(parseVia(formatVia(v)), v);
        const na = onlySipErrors(() => parseNameAddr(s));
        if (na) assert.deepEqual(parseNameAddr(formatNameAddr(na)), na);
        onlySipErrors(() => parseCSeq(s));
      }),
      params(2000),
    );
  });
});
