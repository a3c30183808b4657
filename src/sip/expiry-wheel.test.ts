import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpiryWheel } from './expiry-wheel.ts';

describe('ExpiryWheel', () => {
  it('hands out keys once their second has passed, in order, each once', () => {
    const w = new ExpiryWheel(10_000);
    w.schedule('b', 12_500);
    w.schedule('a', 11_200);
    w.schedule('c', 40_000);
    const seen: string[] = [];
    w.sweep(11_999, (k) => seen.push(k));
    assert.equal(seen.length, 0);
    w.sweep(12_000, (k) => seen.push(k));
    assert.deepEqual(seen, ['a']);
    w.sweep(20_000, (k) => seen.push(k));
    assert.deepEqual(seen, ['a', 'b']);
    w.sweep(20_000, (k) => seen.push(k));
    assert.deepEqual(seen, ['a', 'b'], 'nothing twice');
    assert.equal(w.filed, 1);
  });

  it('a deadline in the past is filed for the next sweep, and re-filing from a sweep works', () => {
    const w = new ExpiryWheel(10_000);
    w.sweep(15_000, () => {});
    w.schedule('late', 1_000);
    const seen: string[] = [];
    w.sweep(17_000, (k) => {
      seen.push(k);
      if (seen.length === 1) w.schedule(k, 19_000);
    });
    assert.deepEqual(seen, ['late']);
    w.sweep(20_100, (k) => seen.push(k));
    assert.deepEqual(seen, ['late', 'late']);
  });
});
