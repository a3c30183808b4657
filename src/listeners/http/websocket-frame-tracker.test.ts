import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { closeFrame, WebSocketCloseCode } from './websocket-close-frame.ts';
import { FrameTrackerState, WebSocketFrameTracker } from './websocket-frame-tracker.ts';

/** One frame as RFC 6455 §5.2 lays it out (the payload is not masked for real: the tracker never looks). */
function frame(opcode: number, length: number, masked: boolean): Buffer {
  const head: number[] = [0x80 | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (length < 126) head.push(maskBit | length);
  else if (length < 65536) head.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    head.push(maskBit | 127, 0, 0, 0, 0);
    head.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  if (masked) head.push(1, 2, 3, 4);
  return Buffer.concat([Buffer.from(head), Buffer.alloc(length, 0x61)]);
}

/** Frame end offsets a tracker finds when fed `chunks`, stopping at every boundary. */
function boundaries(chunks: Buffer[]): { ends: number[]; tracker: WebSocketFrameTracker } {
  const tracker = new WebSocketFrameTracker();
  const ends: number[] = [];
  let offset = 0;
  for (const chunk of chunks) {
    let rest = chunk;
    while (rest.length > 0) {
      // Step past a boundary we are at, then stop at the next one.
      const first = tracker.atBoundary ? 1 : 0;
      tracker.feed(rest.subarray(0, first));
      const used = first + tracker.feed(rest.subarray(first), true);
      offset += used;
      rest = rest.subarray(used);
      if (tracker.atBoundary) ends.push(offset);
    }
  }
  return { ends, tracker };
}

describe('WebSocketFrameTracker', () => {
  it('finds the end of frames of every length encoding, split at every byte', () => {
    const frames = [
      frame(1, 0, false),
      frame(2, 125, true),
      frame(1, 126, false),
      frame(2, 70_000, true),
      frame(8, 2, true),
    ];
    const stream = Buffer.concat(frames);
    const expected: number[] = [];
    let at = 0;
    for (const f of frames) expected.push((at += f.length));
    const bytes = [...stream].map((b) => Buffer.from([b]));
    const { ends, tracker } = boundaries(bytes);
    assert.deepEqual([...new Set(ends)], expected);
    assert.equal(tracker.closeFrames, 1);
    assert.equal(tracker.state, FrameTrackerState.head);
  });

  it('property: boundaries are exactly the frame ends, however the stream is chunked', () => {
    const frameArb = fc.record({
      opcode: fc.constantFrom(0, 1, 2, 8, 9, 10),
      length: fc.oneof(
        fc.integer({ min: 0, max: 130 }),
        fc.integer({ min: 65_530, max: 65_540 }),
        fc.constant(0),
      ),
      masked: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 70_000 })),
        (specs, cuts) => {
          const frames = specs.map((s) => frame(s.opcode, s.length, s.masked));
          const stream = Buffer.concat(frames);
          const chunks: Buffer[] = [];
          let at = 0;
          for (const cut of cuts) {
            if (at >= stream.length) break;
            chunks.push(stream.subarray(at, Math.min(stream.length, at + cut)));
            at += cut;
          }
          if (at < stream.length) chunks.push(stream.subarray(at));
          const expected: number[] = [];
          let end = 0;
          for (const f of frames) expected.push((end += f.length));
          const { ends, tracker } = boundaries(chunks);
          assert.deepEqual([...new Set(ends)], expected);
          assert.equal(tracker.closeFrames, specs.filter((s) => s.opcode === 8).length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads close frames it makes, masked and not', () => {
    for (const masked of [false, true]) {
      const tracker = new WebSocketFrameTracker();
      const bytes = closeFrame(WebSocketCloseCode.serviceRestart, 'service restart: reconnect', masked);
      assert.equal(tracker.feed(bytes), bytes.length);
      assert.equal(tracker.atBoundary, true);
      assert.equal(tracker.closeFrames, 1);
      assert.equal(bytes[1]! & 0x80, masked ? 0x80 : 0);
    }
    const unmasked = closeFrame(WebSocketCloseCode.serviceRestart, 'x', false);
    assert.equal(unmasked.readUInt16BE(2), 1012);
  });

  it('a 64-bit length with its top bit set breaks tracking for good (RFC 6455 §5.2)', () => {
    const tracker = new WebSocketFrameTracker();
    tracker.feed(Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]));
    assert.equal(tracker.state, FrameTrackerState.broken);
    assert.equal(tracker.atBoundary, false);
    tracker.feed(frame(1, 3, false));
    assert.equal(tracker.state, FrameTrackerState.broken);
  });
});
