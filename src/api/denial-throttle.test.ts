import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DenialThrottle } from './denial-throttle.ts';

describe('DenialThrottle', () => {
  it('records up to N refusals a second, then counts them and says so in the next record', () => {
    let now = 1_000_000;
    const throttle = new DenialThrottle(3, () => now);
    assert.deepEqual(
      ['a', 'b', 'c', 'd', 'e'].map((d) => throttle.admit(d)),
      ['a', 'b', 'c', null, null],
    );
    now += 999;
    assert.equal(throttle.admit('f'), null);
    now += 1;
    assert.equal(throttle.admit('g'), 'g (and 3 more denied request(s) before it not recorded: over 3/s)');
    assert.equal(throttle.admit('h'), 'h', 'the count is told once');
  });
});
