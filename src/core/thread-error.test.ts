import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EbbError, InvalidTransitionError, ListenError, fromThreadError, toThreadError } from './errors.ts';

/** Errors crossing a worker thread's message keep what callers tell them apart by. */
describe('toThreadError / fromThreadError', () => {
  const roundTrip = (err: unknown, fallback = 'EBB_WORKER') =>
    fromThreadError(structuredClone(toThreadError(err, fallback)));

  it('a ListenError comes back a ListenError, with its errno and message whole', () => {
    const original = new ListenError('dns.listen (udp): cannot bind 127.0.0.1:53', { code: 'EADDRINUSE' });
    const back = roundTrip(original);
    assert.ok(back instanceof ListenError);
    assert.equal(back.errno, 'EADDRINUSE');
    assert.equal(back.message, original.message);
    assert.deepEqual(back.details, { errno: 'EADDRINUSE' });
  });

  it('an InvalidTransitionError comes back as one; other Ebb errors keep their code', () => {
    assert.ok(
      roundTrip(new InvalidTransitionError('cannot go from closed to refusing')) instanceof
        InvalidTransitionError,
    );
    const other = roundTrip(new EbbError('EBB_SOMETHING', 'went wrong'));
    assert.equal(other.code, 'EBB_SOMETHING');
    assert.equal(other.message, 'went wrong');
  });

  it('an error that is not Ebb’s gets the fallback code and keeps its message', () => {
    const back = roundTrip(new TypeError('x is not a function'), 'EBB_LISTENER_WORKER');
    assert.equal(back.code, 'EBB_LISTENER_WORKER');
    assert.equal(back.message, 'x is not a function');
    assert.equal(roundTrip('a string thrown').message, 'a string thrown');
  });
});
