import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DesiredRun, ServiceIntent, StartupType } from '../core/index.ts';
import { bootIntent } from './boot-intent.ts';

const now = 1_700_000_000_000;

function stored(startup: StartupType, run: DesiredRun): ServiceIntent {
  return {
    run,
    graceful: run === 'stopped',
    deadlineAt: run === 'running' ? null : now + 60_000,
    startup,
    reason: 'patch KB123',
    by: 'ops',
    at: now - 1000,
  };
}

/**
 * SPEC §3, every startup type × stored intent × onRestart: what the service does when its agent starts.
 * A crash never turns a paused service into an accepting one unless `onRestart: resume` says so.
 */
const expected: Record<StartupType, Record<DesiredRun, Record<'keep' | 'resume', DesiredRun>>> = {
  automatic: {
    running: { keep: 'running', resume: 'running' },
    paused: { keep: 'paused', resume: 'running' },
    stopped: { keep: 'running', resume: 'running' },
  },
  manual: {
    running: { keep: 'stopped', resume: 'stopped' },
    paused: { keep: 'stopped', resume: 'stopped' },
    stopped: { keep: 'stopped', resume: 'stopped' },
  },
  disabled: {
    running: { keep: 'stopped', resume: 'stopped' },
    paused: { keep: 'stopped', resume: 'stopped' },
    stopped: { keep: 'stopped', resume: 'stopped' },
  },
};

describe('boot intent (SPEC §3)', () => {
  for (const startup of ['automatic', 'manual', 'disabled'] as const) {
    for (const run of ['running', 'paused', 'stopped'] as const) {
      for (const onRestart of ['keep', 'resume'] as const) {
        const want = expected[startup][run][onRestart];
        it(`${startup}, intent ${run}, onRestart ${onRestart} → ${want}`, () => {
          const before = stored(startup, run);
          const copy = structuredClone(before);
          const boot = bootIntent(before, onRestart, now);
          assert.deepEqual(before, copy, 'the stored intent is not mutated');
          assert.equal(boot.run, want);
          assert.equal(boot.startup, startup, 'the startup type is kept');
          if (boot.run === run) {
            // Nothing to change: the very same intent, so the agent writes nothing back.
            assert.equal(boot, before);
            return;
          }
          assert.equal(boot.by, 'agent-boot');
          assert.equal(boot.at, now);
          assert.ok(boot.reason.length > 0, 'the change says why');
          assert.equal(boot.deadlineAt, null, 'a deadline does not survive a boot change');
          if (boot.run === 'stopped') assert.equal(boot.graceful, false);
        });
      }
    }
  }

  it('a paused service never comes back accepting under keep, whatever its startup type', () => {
    for (const startup of ['automatic', 'manual', 'disabled'] as const) {
      assert.notEqual(bootIntent(stored(startup, 'paused'), 'keep', now).run, 'running');
    }
  });
});
