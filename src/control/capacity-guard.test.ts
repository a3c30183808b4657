import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DesiredRun } from '../core/index.ts';
import { checkCapacity, type GuardInput } from './capacity-guard.ts';

type Row = GuardInput['members'][number];
const up = (member: string, before: DesiredRun, after: DesiredRun = before): Row => ({
  member,
  agentUp: true,
  before,
  after,
});
const down = (member: string, before: DesiredRun, after: DesiredRun = before): Row => ({
  member,
  agentUp: false,
  before,
  after,
});
const guard = (minAccepting: number, members: Row[]) =>
  checkCapacity({ service: 'echo', minAccepting, members });

describe('capacity guard (SPEC §5)', () => {
  it('allows pausing one of three when one must stay', () => {
    const verdict = guard(1, [up('m1', 'running', 'paused'), up('m2', 'running'), up('m3', 'running')]);
    assert.deepEqual(verdict, {
      allowed: true,
      service: 'echo',
      minAccepting: 1,
      acceptingBefore: 3,
      acceptingAfter: 2,
    });
  });

  it('refuses pausing or stopping the last accepting member', () => {
    for (const to of ['paused', 'stopped'] as const) {
      const verdict = guard(1, [up('m1', 'running', to), up('m2', 'paused'), up('m3', 'stopped')]);
      assert.equal(verdict.allowed, false, to);
      assert.equal(verdict.acceptingBefore, 1);
      assert.equal(verdict.acceptingAfter, 0);
    }
  });

  it('members whose agent is down are not counted', () => {
    // m2 and m3 intend to run but their agents are gone: m1 is the only one really accepting.
    const verdict = guard(1, [up('m1', 'running', 'paused'), down('m2', 'running'), down('m3', 'running')]);
    assert.equal(verdict.allowed, false);
    assert.equal(verdict.acceptingBefore, 1);
    assert.equal(verdict.acceptingAfter, 0);
    // Pausing a member whose agent is down lowers nothing and is allowed.
    const downPause = guard(1, [down('m1', 'running', 'paused'), up('m2', 'running')]);
    assert.equal(downPause.allowed, true);
    assert.equal(downPause.acceptingBefore, 1);
    assert.equal(downPause.acceptingAfter, 1);
  });

  it('honours a per-service minAccepting', () => {
    const members = [up('m1', 'running', 'paused'), up('m2', 'running'), up('m3', 'running')];
    assert.equal(guard(2, members).allowed, true, '2 remain, 2 needed');
    const verdict = guard(3, members);
    assert.equal(verdict.allowed, false, '2 remain, 3 needed');
    assert.equal(verdict.minAccepting, 3);
    assert.equal(guard(0, [up('m1', 'running', 'stopped')]).allowed, true, 'minAccepting 0 allows none');
  });

  it('a change that does not lower the count is never refused, even in a short pool', () => {
    // Pool already below minAccepting: 1 accepting, 3 needed.
    const short = [up('m2', 'running'), up('m3', 'paused')];
    assert.equal(guard(3, [up('m1', 'paused', 'running'), ...short]).allowed, true, 'resume mends the pool');
    assert.equal(guard(3, [up('m1', 'paused', 'stopped'), ...short]).allowed, true, 'paused → stopped');
    assert.equal(guard(3, [up('m1', 'stopped', 'paused'), ...short]).allowed, true, 'stopped → paused');
    assert.equal(guard(3, [up('m1', 'running', 'running'), ...short]).allowed, true, 'no change');
    assert.equal(guard(3, [up('m1', 'running', 'paused'), ...short]).allowed, false, 'lowering is refused');
  });

  it('an empty pool allows anything that does not lower the count', () => {
    assert.equal(guard(1, []).allowed, true);
  });

  it('a member whose lease lapsed while it may still serve is not paused into an empty pool', () => {
    // m1 is paused; m2 is the last one meant to accept, but its lease lapsed (a starved agent may still
    // accept). Pausing it would leave no member accepting: refused, although 0 live members accept before.
    const verdict = guard(1, [up('m1', 'paused'), down('m2', 'running', 'paused')]);
    assert.equal(verdict.allowed, false);
    assert.equal(verdict.acceptingBefore, 0);
    assert.equal(verdict.acceptingAfter, 0);
  });

  it('property: refused exactly when a member leaves running and fewer than minAccepting live ones remain', () => {
    const run = fc.constantFrom<DesiredRun>('running', 'paused', 'stopped');
    const row = fc.record({ member: fc.string(), agentUp: fc.boolean(), before: run, after: run });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 8 }), fc.nat({ max: 9 }), (members, minAccepting) => {
        const verdict = guard(minAccepting, members);
        const before = members.filter((m) => m.agentUp && m.before === 'running').length;
        const after = members.filter((m) => m.agentUp && m.after === 'running').length;
        assert.equal(verdict.acceptingBefore, before);
        assert.equal(verdict.acceptingAfter, after);
        const takesOneOut = members.some((m) => m.before === 'running' && m.after !== 'running');
        assert.equal(verdict.allowed, !(takesOneOut && after < minAccepting));
      }),
      { numRuns: 300 },
    );
  });
});
