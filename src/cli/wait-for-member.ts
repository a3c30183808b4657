import type { MemberStatus } from '../control/index.ts';
import { EbbError, TimeoutError, formatDuration } from '../core/index.ts';
import { forcedSince } from './command-report.ts';

export type WaitFor = 'drained' | 'stopped' | 'ready';

/** What the wait needs of the API client (a fake in unit tests). */
export interface MemberReader {
  get<T>(path: string): Promise<T>;
}

/** What the wait shows (DrainProgress on the CLI). */
export interface WaitProgress {
  update(sessionsLeft: number, detail?: string): void;
  note(message: string): void;
  finish(message: string): void;
  clear(): void;
}

export interface WaitOptions {
  member: string;
  services: readonly string[];
  waitFor: WaitFor;
  timeoutMs: number | null;
  /** The member just before the command: forced counts are reported from there. */
  before: MemberStatus | null;
  progress: WaitProgress | null;
  pollMs?: number;
  /** How long the API may be gone before the wait gives up (exit 1). */
  apiOutageMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultPollMs = 250;
/** An API restart (a deploy, a crash and systemd's restart) takes seconds; a drain may take hours. */
export const defaultApiOutageMs = 60_000;

/**
 * Polls the member until the condition holds; exit 3 (TimeoutError) when the timeout passes. An API that
 * does not answer for a while (restarted, a network blink) is waited for, said once, up to
 * `apiOutageMs`: the drain itself goes on in the agents whether or not anyone watches it.
 */
export async function waitForMember(client: MemberReader, options: WaitOptions): Promise<MemberStatus> {
  const { member, services, waitFor, timeoutMs, before, progress } = options;
  const pollMs = options.pollMs ?? defaultPollMs;
  const apiOutageMs = options.apiOutageMs ?? defaultApiOutageMs;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const startedAt = Date.now();
  let outageSince: number | null = null;
  let left = 0;
  try {
    for (;;) {
      let status: MemberStatus | null = null;
      try {
        status = await client.get<MemberStatus>(`/v1/members/${encodeURIComponent(member)}`);
      } catch (err) {
        if (!isApiOutage(err)) throw err;
        const now = Date.now();
        if (outageSince === null) {
          outageSince = now;
          progress?.note(
            `${member}: ${err.message}; retrying for up to ${formatDuration(apiOutageMs)} (the drain goes on)`,
          );
        } else if (now - outageSince >= apiOutageMs) {
          throw new EbbError(err.code, `${err.message} (retried for ${formatDuration(now - outageSince)})`, {
            exitCode: err.exitCode,
            cause: err,
          });
        }
      }
      if (status) {
        if (outageSince !== null) progress?.note(`${member}: the API answers again`);
        outageSince = null;
        const targeted = status.services.filter((s) => services.includes(s.id));
        left = targeted.reduce((sum, s) => sum + s.sessions, 0);
        if (isDone(status, targeted, waitFor)) {
          const forced = forcedSince(before, targeted);
          progress?.finish(
            `${member}: ${describe(waitFor)}${forced > 0 ? `, ${forced} session(s) forced` : ''}`,
          );
          return status;
        }
      }
      if (timeoutMs !== null && Date.now() - startedAt >= timeoutMs) {
        progress?.finish(`${member}: timed out with ${left} session(s) left`);
        throw new TimeoutError(
          `${member} is not ${describe(waitFor)} after ${formatDuration(timeoutMs)}: ${left} session(s) left`,
          { sessions: left },
        );
      }
      if (status) {
        const draining = status.services
          .filter((s) => services.includes(s.id) && !s.drained && s.state !== 'stopped')
          .map((s) => s.id);
        // SPEC §14: registration flows still open on a paused sip service.
        const flows = status.services
          .filter((s) => services.includes(s.id))
          .reduce((sum, s) => sum + (s.flows ?? 0), 0);
        progress?.update(left, draining.join(', ') + (flows > 0 ? ` (${flows} flows open)` : ''));
      } else {
        progress?.update(left, `API unreachable for ${formatDuration(Date.now() - outageSince!)}`);
      }
      await sleep(pollMs);
    }
  } catch (err) {
    // Never glue an error onto a half-drawn bar.
    progress?.clear();
    throw err;
  }
}

/** The API is gone or briefly broken, as opposed to answering with an error about the request. */
function isApiOutage(err: unknown): err is EbbError {
  if (!(err instanceof EbbError)) return false;
  if (err.code === 'EBB_API_UNREACHABLE' || err.code === 'EBB_BAD_RESPONSE') return true;
  return err.httpStatus === 502 || err.httpStatus === 503 || err.httpStatus === 504;
}

function isDone(status: MemberStatus, targeted: MemberStatus['services'], waitFor: WaitFor): boolean {
  if (waitFor === 'ready') return status.readyForOffline;
  if (waitFor === 'stopped') return targeted.every((s) => s.state === 'stopped');
  return targeted.every((s) => s.drained || s.state === 'stopped');
}

function describe(waitFor: WaitFor): string {
  return waitFor === 'ready' ? 'ready for offline' : waitFor;
}
