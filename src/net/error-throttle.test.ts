import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorThrottle } from './error-throttle.ts';

describe('ErrorThrottle', () => {
  it('passes the first of each code at once, then one per interval with the count left out', () => {
    let now = 0;
    const reported: Array<[string, number]> = [];
    const throttle = new ErrorThrottle<{ code: string; errno?: string }>(
      (err, suppressed) => reported.push([`${err.code}/${err.errno}`, suppressed]),
      { intervalMs: 1000, now: () => now },
    );
    throttle.push({ code: 'EBB_ACCEPT_FAILED', errno: 'EMFILE' });
    throttle.push({ code: 'EBB_ACCEPT_FAILED', errno: 'EMFILE' });
    throttle.push({ code: 'EBB_ACCEPT_FAILED', errno: 'ENFILE' });
    now = 999;
    throttle.push({ code: 'EBB_ACCEPT_FAILED', errno: 'EMFILE' });
    now = 1000;
    throttle.push({ code: 'EBB_ACCEPT_FAILED', errno: 'EMFILE' });
    assert.deepEqual(reported, [
      ['EBB_ACCEPT_FAILED/EMFILE', 0],
      ['EBB_ACCEPT_FAILED/ENFILE', 0],
      ['EBB_ACCEPT_FAILED/EMFILE', 2],
    ]);
  });
});
