import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandResult, MemberStatus } from '../control/index.ts';
import { serviceView as service, type ServiceView } from './cli-test-support.ts';
import { commandLines, forcedSince } from './command-report.ts';

function member(...services: ServiceView[]): MemberStatus {
  return { id: 'fe01', address: '127.0.0.11', agent: 'up', readyForOffline: false, services };
}

function result(
  action: CommandResult['action'],
  change: { from: 'running' | 'paused' | 'stopped'; to: 'running' | 'paused' | 'stopped' },
  after: ServiceView,
  fields: Partial<CommandResult> = {},
): CommandResult {
  return {
    action,
    member: 'fe01',
    changed: [{ service: after.id, ...change, revision: 7 }],
    unchanged: [],
    applied: true,
    failures: [],
    forced: false,
    status: member(after),
    ...fields,
  };
}

describe('command output says what is true now', () => {
  it('a graceful stop with a session left is stopping, not stopped (audit #15)', () => {
    const now = service('echo', { state: 'stopping', intent: 'stopped', sessions: 1 });
    const lines = commandLines(
      result('stop', { from: 'running', to: 'stopped' }, now),
      member(service('echo')),
      {
        action: 'stop',
        graceful: true,
      },
    );
    assert.deepEqual(lines, ['fe01/echo: running → stopping (1 session left)']);
  });

  it('a hard stop says how many sessions it ended, counted from before the command (audit #3)', () => {
    const before = member(service('echo', { sessions: 1, forced: 2 }));
    const now = service('echo', { state: 'stopped', intent: 'stopped', forced: 3 });
    assert.deepEqual(
      commandLines(result('stop', { from: 'running', to: 'stopped' }, now), before, { action: 'stop' }),
      ['fe01/echo: running → stopped (1 session(s) ended (forced))'],
    );
    const none = service('echo', { state: 'stopped', intent: 'stopped', forced: 2 });
    assert.deepEqual(
      commandLines(result('stop', { from: 'running', to: 'stopped' }, none), before, { action: 'stop' }),
      ['fe01/echo: running → stopped (0 session(s) ended (forced))'],
    );
  });

  it('startup shows the type change (audit #14)', () => {
    const before = member(service('call-park'));
    const now = service('call-park', { startup: 'manual' });
    assert.deepEqual(
      commandLines(result('startup', { from: 'running', to: 'running' }, now), before, {
        action: 'startup',
        startup: 'manual',
      }),
      ['fe01/call-park: startup automatic → manual'],
    );
  });

  it('a pause says sessions left or drained; an unconfirmed change says so', () => {
    const paused = service('echo', { state: 'paused', intent: 'paused', sessions: 2 });
    assert.deepEqual(
      commandLines(result('pause', { from: 'running', to: 'paused' }, paused), null, { action: 'pause' }),
      ['fe01/echo: running → paused (2 sessions left)'],
    );
    const drained = service('echo', { state: 'paused', intent: 'paused', drained: true });
    assert.deepEqual(
      commandLines(result('pause', { from: 'running', to: 'paused' }, drained), null, { action: 'pause' }),
      ['fe01/echo: running → paused (drained)'],
    );
    const stale = service('echo');
    assert.deepEqual(
      commandLines(result('pause', { from: 'running', to: 'paused' }, stale, { applied: false }), null, {
        action: 'pause',
      }),
      ['fe01/echo: running → paused (not confirmed yet)'],
    );
  });

  it('text from elsewhere is escaped', () => {
    const now = service('echo', { state: 'paused' });
    const lines = commandLines(
      result('pause', { from: 'running', to: 'paused' }, now, {
        unchanged: [{ service: 'sip', why: 'already\npaused\x1b[31m' }],
      }),
      null,
      { action: 'pause' },
    );
    assert.equal(lines[1], 'fe01/sip: unchanged, already\\u000apaused\\u001b[31m');
  });

  it('forcedSince subtracts what was forced before, never below 0 (audit #9)', () => {
    const before = member(service('a', { forced: 1 }), service('b', { forced: 5 }));
    assert.equal(forcedSince(before, [service('a', { forced: 1 }), service('b', { forced: 5 })]), 0);
    assert.equal(forcedSince(before, [service('a', { forced: 3 }), service('b', { forced: 0 })]), 2);
    assert.equal(forcedSince(null, [service('a', { forced: 3 })]), 3);
  });
});
