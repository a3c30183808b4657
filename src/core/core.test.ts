import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BadRequestError,
  ConfigError,
  EbbError,
  EventCode,
  ExitCode,
  GuardRefusedError,
  InvalidTransitionError,
  NotFoundError,
  TimeoutError,
  UnauthorisedError,
  defaultIntent,
  durationMs,
  durationPattern,
  maxDurationMs,
  formatDuration,
  isDrained,
  isReadyForOffline,
  parseDuration,
  parseIntent,
} from './index.ts';

describe('parseDuration / formatDuration', () => {
  it('parses every unit and bare seconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('5'), 5000);
    assert.equal(parseDuration(' 5s '), 5000);
  });

  it('names the field in its error', () => {
    for (const bad of ['', 's', '5 s', '-5s', '5x', '1e3s', 'ten minutes']) {
      assert.throws(
        () => parseDuration(bad, 'deadline'),
        (err: unknown) => err instanceof BadRequestError && err.message.startsWith('deadline: '),
        bad,
      );
    }
  });

  it('one grammar: durationMs and parseDuration agree, and the pattern is the one exported', () => {
    for (const text of ['500ms', '5s', '5', '0', '1.5m', '2h', '1d', ' 5s ']) {
      assert.equal(durationMs(text), parseDuration(text), text);
      assert.ok(durationPattern.test(text.trim()), text);
    }
    for (const bad of ['', '5 s', '-5s', '5x', '1e3s', '.5s', '5.s', 'Infinity', `${'9'.repeat(400)}s`]) {
      assert.equal(durationMs(bad), null, bad);
    }
  });

  it('a duration is at most 30d: `--deadline 99999d` is a typo (operator audit #41)', () => {
    assert.equal(durationMs('30d'), maxDurationMs);
    assert.equal(durationMs('99999d'), null);
    assert.equal(durationMs('721h'), null);
    assert.throws(
      () => parseDuration('99999d', '--deadline'),
      /--deadline: "99999d" is not a duration \(e\.g\. 500ms, 30s, 10m, 2h; at most 30d\)/,
    );
  });

  it('property: a number and a unit, or a bare number of seconds, is that many milliseconds', () => {
    const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), fc.constantFrom('', 'ms', 's', 'm', 'h', 'd'), (n, unit) => {
        const expected = n * (unit === '' ? 1000 : unitMs[unit]);
        if (expected > maxDurationMs) {
          assert.equal(durationMs(`${n}${unit}`), null);
          assert.throws(() => parseDuration(`${n}${unit}`), /at most 30d/);
          return;
        }
        assert.equal(durationMs(`${n}${unit}`), expected);
        assert.equal(parseDuration(`${n}${unit}`), expected);
      }),
      { numRuns: 300 },
    );
  });

  it('formats for people', () => {
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(5_000), '5s');
    assert.equal(formatDuration(65_000), '1m05s');
    assert.equal(formatDuration(3_660_000), '1h01m');
  });

  it('property: anything but a duration is a BadRequestError, never another error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (text) => {
        try {
          const ms = parseDuration(text);
          assert.ok(Number.isFinite(ms) && ms >= 0);
        } catch (err) {
          assert.ok(err instanceof BadRequestError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('intents', () => {
  it('defaultIntent follows the startup type', () => {
    assert.equal(defaultIntent('automatic').run, 'running');
    assert.equal(defaultIntent('manual').run, 'stopped');
    assert.equal(defaultIntent('disabled').run, 'stopped');
    assert.equal(defaultIntent('manual', 42).at, 42);
    assert.equal(defaultIntent('automatic').by, 'config');
  });

  it('parseIntent round-trips and refuses what is not an intent', () => {
    const intent = {
      ...defaultIntent('automatic', 7),
      run: 'paused' as const,
      deadlineAt: 99,
      reason: 'r',
      by: 'ops',
    };
    assert.deepEqual(parseIntent(JSON.stringify(intent)), intent);
    for (const bad of [
      '',
      'null',
      '[]',
      '{}',
      '{"run":"paused"}',
      '{"run":"gone","startup":"manual"}',
      '{',
    ]) {
      assert.equal(parseIntent(bad), null, bad);
    }
    const partial = parseIntent('{"run":"running","startup":"manual","graceful":"yes","deadlineAt":"soon"}')!;
    assert.equal(partial.graceful, false);
    assert.equal(partial.deadlineAt, null);
    assert.equal(partial.reason, '');
  });
});

describe('lifecycle helpers', () => {
  it('drained only while paused or stopping with no sessions', () => {
    assert.equal(isDrained('paused', 0), true);
    assert.equal(isDrained('stopping', 0), true);
    assert.equal(isDrained('paused', 1), false);
    assert.equal(isDrained('running', 0), false);
    assert.equal(isDrained('stopped', 0), false);
  });

  it('readyForOffline: every service stopped, or paused/stopping and drained', () => {
    assert.equal(
      isReadyForOffline([
        { state: 'stopped', sessions: 0 },
        { state: 'paused', sessions: 0 },
      ]),
      true,
    );
    assert.equal(isReadyForOffline([{ state: 'stopping', sessions: 0 }]), true);
    assert.equal(isReadyForOffline([{ state: 'paused', sessions: 1 }]), false);
    assert.equal(
      isReadyForOffline([
        { state: 'running', sessions: 0 },
        { state: 'stopped', sessions: 0 },
      ]),
      false,
    );
    assert.equal(isReadyForOffline([{ state: 'starting', sessions: 0 }]), false);
  });
});

describe('errors', () => {
  it('each failure has a stable code, an HTTP status and an exit code (SPEC §7)', () => {
    const cases: Array<[EbbError, string, number, number]> = [
      [new ConfigError([{ path: 'a.b', message: 'bad' }]), 'EBB_BAD_CONFIG', 400, ExitCode.usage],
      [new BadRequestError([{ path: 'x', message: 'bad' }]), 'EBB_BAD_REQUEST', 400, ExitCode.usage],
      [new NotFoundError('member "x"'), 'EBB_NOT_FOUND', 404, ExitCode.usage],
      [new InvalidTransitionError('no'), 'EBB_INVALID_TRANSITION', 409, ExitCode.error],
      [new GuardRefusedError('no', {}), 'EBB_GUARD_REFUSED', 409, ExitCode.guardRefused],
      [new TimeoutError('slow'), 'EBB_TIMEOUT', 504, ExitCode.timeout],
      [new UnauthorisedError('who'), 'EBB_UNAUTHENTICATED', 401, ExitCode.unauthorised],
      [new UnauthorisedError('no', 403), 'EBB_FORBIDDEN', 403, ExitCode.unauthorised],
    ];
    for (const [err, code, status, exit] of cases) {
      assert.ok(err instanceof Error);
      assert.equal(err.code, code);
      assert.equal(err.httpStatus, status);
      assert.equal(err.exitCode, exit);
      assert.equal(err.name, err.constructor.name);
      assert.equal(err.toJSON().code, code);
    }
    assert.equal(ExitCode.guardRefused, 4);
    assert.equal(ExitCode.unauthorised, 5);
  });

  it('ConfigError and BadRequestError name the field in the message and the details', () => {
    const config = new ConfigError(
      [{ path: 'members[1].services[0].listeners[0].port', message: 'must be 1-65535' }],
      'pool.yaml',
    );
    assert.equal(config.message, 'pool.yaml: members[1].services[0].listeners[0].port: must be 1-65535');
    assert.deepEqual(config.toJSON().details, { issues: config.issues });
    const request = new BadRequestError([{ path: 'deadline', message: 'is not a duration' }]);
    assert.equal(request.message, 'deadline: is not a duration');
  });

  it('event codes are the ones SPEC §2 names', () => {
    for (const code of [
      'service.started',
      'service.paused',
      'service.drained',
      'service.resumed',
      'service.stopped',
      'session.forced',
      'guard.refused',
      'agent.up',
      'agent.down',
    ]) {
      assert.ok((Object.values(EventCode) as string[]).includes(code), code);
    }
  });
});
