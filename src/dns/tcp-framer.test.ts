import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FramingErrorCode, TcpFramer } from './tcp-framer.ts';
import { frame } from './dns-test-support.ts';

function collect(): { framer: TcpFramer; messages: Buffer[]; errors: string[] } {
  const messages: Buffer[] = [];
  const errors: string[] = [];
  const framer = new TcpFramer({
    message: (m) => messages.push(Buffer.from(m)),
    error: (c) => errors.push(c),
  });
  return { framer, messages, errors };
}

describe('TcpFramer', () => {
  it('splits pipelined messages however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 12, maxLength: 600 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map((b) => frame(Buffer.from(b))));
          const { framer, messages, errors } = collect();
          let offset = 0;
          for (let i = 0; offset < stream.length; i++) {
            const size = cuts[i % cuts.length]!;
            framer.push(stream.subarray(offset, offset + size));
            offset += size;
          }
          assert.deepEqual(errors, []);
          assert.deepEqual(
            messages,
            bodies.map((b) => Buffer.from(b)),
          );
          assert.equal(framer.buffered, 0);
          assert.equal(framer.midMessage, false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('fails on a length below 12, zero included, and reads nothing after', () => {
    for (const length of [0, 1, 11]) {
      const { framer, messages, errors } = collect();
      framer.push(Buffer.concat([Buffer.from([0, length]), frame(Buffer.alloc(20))]));
      assert.deepEqual(errors, [FramingErrorCode.tooShort]);
      assert.equal(messages.length, 0);
    }
  });

  it('holds at most one partial message, whatever the prefix promises', () => {
    const { framer, messages } = collect();
    framer.push(Buffer.from([0xff, 0xff]));
    framer.push(Buffer.alloc(65534));
    assert.equal(messages.length, 0);
    assert.equal(framer.buffered, 65534);
    assert.equal(framer.midMessage, true);
    framer.push(Buffer.alloc(1));
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.length, 65535);
    assert.equal(framer.buffered, 0);
  });
});
