import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MemberStatus } from '../control/index.ts';
import { EbbError, ExitCode, NotFoundError } from '../core/index.ts';
import { waitForMember, type MemberReader, type WaitProgress } from './wait-for-member.ts';

function status(ready: boolean, forced: number, sessions = ready ? 0 : 1): MemberStatus {
  const service = {
    id: 'echo',
    state: 'paused',
    sessions,
    drained: sessions === 0,
    forced,
  } as MemberStatus['services'][number];
  return { id: 'm1', address: '127.0.0.1', agent: 'up', readyForOffline: ready, services: [service] };
}

const unreachable = () =>
  new EbbError('EBB_API_UNREACHABLE', 'cannot reach the Ebb API at http://127.0.0.1:1 (ECONNREFUSED)');

/** Answers from a script: a status, or an error to throw; the last entry repeats. */
function scripted(...answers: Array<MemberStatus | Error>): MemberReader & { calls: number } {
  const reader = {
    calls: 0,
    get<T>(): Promise<T> {
      const answer = answers[Math.min(reader.calls++, answers.length - 1)]!;
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer as T);
    },
  };
  return reader;
}

function recorder(): WaitProgress & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    update: (left) => events.push(`update ${left}`),
    note: (message) => events.push(`note ${message}`),
    finish: (message) => events.push(`finish ${message}`),
    clear: () => events.push('clear'),
  };
}

const base = { member: 'm1', services: ['echo'], waitFor: 'ready' as const, timeoutMs: null, pollMs: 1 };

describe('waiting for a drain', () => {
  it('survives an API blink: says so once, goes on, and says when the API is back (audit #10)', async () => {
    const progress = recorder();
    const client = scripted(status(false, 0), unreachable(), unreachable(), status(true, 0));
    const final = await waitForMember(client, { ...base, before: status(false, 0), progress });
    assert.equal(final.readyForOffline, true);
    const notes = progress.events.filter((e) => e.startsWith('note'));
    assert.equal(notes.length, 2);
    assert.match(notes[0]!, /ECONNREFUSED\); retrying for up to 1m/);
    assert.match(notes[1]!, /the API answers again/);
    assert.equal(progress.events.at(-1), 'finish m1: ready for offline');
  });

  it('shows the sip registration flows still open in the progress (SPEC §14)', async () => {
    const details: string[] = [];
    const progress = {
      ...recorder(),
      update: (_left: number, detail?: string) => void details.push(detail ?? ''),
    };
    const withFlows = status(false, 0);
    withFlows.services[0]!.flows = 3;
    await waitForMember(scripted(withFlows, status(true, 0)), { ...base, before: withFlows, progress });
    assert.equal(details[0], 'echo (3 flows open)');
  });

  it('gives up once the API stays away past the bound, clearing the bar first', async () => {
    const progress = recorder();
    const client = scripted(status(false, 0), unreachable());
    await assert.rejects(
      waitForMember(client, { ...base, before: null, progress, apiOutageMs: 30 }),
      (err: unknown) =>
        err instanceof EbbError &&
        err.code === 'EBB_API_UNREACHABLE' &&
        err.exitCode === ExitCode.error &&
        /\(retried for \d+ms\)$/.test(err.message),
    );
    assert.equal(progress.events.at(-1), 'clear');
    assert.ok(client.calls > 2, 'it retried');
  });

  it('an answer that is an error about the request is not retried', async () => {
    const progress = recorder();
    const client = scripted(new NotFoundError('member "m1"'));
    await assert.rejects(waitForMember(client, { ...base, before: null, progress }), /does not exist/);
    assert.equal(client.calls, 1);
    assert.deepEqual(progress.events, ['clear']);
  });

  it('reports the sessions forced by this drain, not the counter since the service started (audit #9)', async () => {
    const earlier = recorder();
    await waitForMember(scripted(status(true, 1)), { ...base, before: status(false, 1), progress: earlier });
    assert.equal(earlier.events.at(-1), 'finish m1: ready for offline');
    const now = recorder();
    await waitForMember(scripted(status(true, 3)), { ...base, before: status(false, 1), progress: now });
    assert.equal(now.events.at(-1), 'finish m1: ready for offline, 2 session(s) forced');
  });
});
