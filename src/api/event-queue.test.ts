import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventQueue, type StreamMessage } from './event-queue.ts';

const resync = (dropped: number): StreamMessage => ({ event: 'resync', data: JSON.stringify({ dropped }) });
const names = (messages: StreamMessage[]) => messages.map((m) => m.event);
const text = (m: StreamMessage) => (typeof m.data === 'function' ? m.data() : m.data);

describe('EventQueue: the bounded per-client queue of the event stream', () => {
  it('keeps messages in order until taken', () => {
    const queue = new EventQueue(8, resync);
    queue.push({ event: 'a', data: '1' });
    queue.push({ event: 'b', data: '2' });
    assert.deepEqual(names(queue.takeAll()), ['a', 'b']);
    assert.equal(queue.size, 0);
  });

  it('a message replaces the queued one with the same merge key, in its place', () => {
    const queue = new EventQueue(8, resync);
    queue.push({ event: 'sessions', data: '1', mergeKey: 'sessions:m1/a' });
    queue.push({ event: 'service.paused', data: 'p' });
    queue.push({ event: 'sessions', data: '2', mergeKey: 'sessions:m1/a' });
    queue.push({ event: 'sessions', data: '9', mergeKey: 'sessions:m2/a' });
    const taken = queue.takeAll();
    assert.deepEqual(names(taken), ['sessions', 'service.paused', 'sessions']);
    assert.deepEqual(taken.map(text), ['2', 'p', '9']);
  });

  it('when full, drops what is queued for one resync that counts the dropped events', () => {
    const queue = new EventQueue(4, resync);
    for (let i = 0; i < 4; i++) queue.push({ event: 'e', data: String(i) });
    queue.push({ event: 'e', data: '4' });
    let taken = queue.takeAll();
    assert.deepEqual(names(taken), ['resync', 'e']);
    assert.deepEqual(JSON.parse(text(taken[0]!)), { dropped: 4 });
    assert.equal(text(taken[1]!), '4');

    // Two overflows before the client reads: one resync, with both counts.
    for (let i = 0; i < 10; i++) queue.push({ event: 'e', data: String(i) });
    taken = queue.takeAll();
    assert.equal(taken.filter((m) => m.event === 'resync').length, 1);
    assert.equal(taken[0]!.event, 'resync');
    assert.ok(taken.length <= 4);
    assert.equal(JSON.parse(text(taken[0]!)).dropped, 7, '4 then 3 more dropped');
  });

  it('a resync takes the sequence number of the newest event it replaces', () => {
    const queue = new EventQueue(4, resync);
    queue.push({ event: 'pool', data: 'p', mergeKey: 'pool' });
    for (let seq = 1; seq <= 3; seq++) queue.push({ event: 'e', data: String(seq), seq });
    queue.push({ event: 'e', data: '4', seq: 4 });
    let taken = queue.takeAll();
    assert.deepEqual(
      taken.map((m) => [m.event, m.seq]),
      [
        ['resync', 3],
        ['e', 4],
      ],
    );
    for (let seq = 5; seq <= 9; seq++) queue.push({ event: 'e', data: String(seq), seq });
    for (let seq = 10; seq <= 13; seq++) queue.push({ event: 'e', data: String(seq), seq });
    taken = queue.takeAll();
    assert.equal(taken[0]!.event, 'resync');
    assert.ok(
      taken.every((m, i) => i === 0 || m.seq! > taken[i - 1]!.seq!),
      'sequence numbers increase',
    );
    queue.push({ event: 'sessions', data: 's', mergeKey: 's1' });
    queue.push({ event: 'sessions', data: 's', mergeKey: 's2' });
    queue.push({ event: 'sessions', data: 's', mergeKey: 's3' });
    queue.push({ event: 'sessions', data: 's', mergeKey: 's4' });
    queue.push({ event: 'sessions', data: 's', mergeKey: 's5' });
    assert.equal(queue.takeAll()[0]!.seq, undefined, 'no event dropped, no sequence number');
  });

  it('heartbeats are not counted as dropped events', () => {
    const queue = new EventQueue(2, resync);
    queue.push({ event: null, data: 'heartbeat', mergeKey: 'heartbeat' });
    queue.push({ event: 'e', data: '1' });
    queue.push({ event: 'e', data: '2' });
    assert.deepEqual(JSON.parse(text(queue.takeAll()[0]!)), { dropped: 1 });
  });

  it('next() waits for a message or for close()', async () => {
    const queue = new EventQueue(4, resync);
    let woke = false;
    const waiting = queue.next().then(() => (woke = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false);
    queue.push({ event: 'e', data: '1' });
    await waiting;
    queue.takeAll();
    const closing = queue.next();
    queue.close();
    await closing;
    queue.push({ event: 'e', data: 'after close' });
    assert.equal(queue.size, 0);
  });
});
