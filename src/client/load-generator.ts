import type { Endpoint } from './pool-resolver.ts';

/** One session of the load, as its runner sees it. */
export interface SessionContext {
  /** The member list for this session (a DNS answer), in the order to try. */
  endpoints: Endpoint[];
  /** The session's number, from 0. */
  n: number;
  holdMs: number;
  /**
   * The runner calls this once a member took the session (connected, answered) — before holding it —
   * with `retried` when another member refused it first. A session that then fails moves from accepted
   * to failed.
   */
  accepted(retried: boolean): void;
}

/**
 * One kind of demo session (a TCP echo, a SIP call, an HTTP request, a WebSocket): refusals move it to the
 * next member. Resolves when the session ended as it should; rejects with why it did not.
 */
export type SessionRunner = (session: SessionContext) => Promise<void>;

export interface LoadOptions {
  /**
   * The member list for each new session (a DNS answer, perhaps cached). `fresh`: every address of the
   * last answer refused, so ask DNS again rather than answer from a cache.
   */
  endpoints: (options?: { fresh?: boolean }) => Promise<Endpoint[]>;
  session: SessionRunner;
  ratePerSecond: number;
  durationMs: number;
  holdMs: number;
  onProgress?: (stats: LoadStats) => void;
}

/**
 * The counts of a load run. `accepted` and `failed` never overlap (operator audit #18): at any moment
 * `started = accepted + failed + connecting`, where connecting sessions are the active ones no member
 * has taken yet.
 */
export interface LoadStats {
  started: number;
  /** Sessions a member took (connected, answered) that have not failed: still held, or completed. */
  accepted: number;
  /** Sessions no member took, or that broke after one took them (those are also `dropped`). */
  failed: number;
  /** Of the failed, those a member had taken first: cut, closed by the server, a bad answer. */
  dropped: number;
  /** Of the accepted, those that reached a member only after another refused them. */
  retried: number;
  /** Sessions not ended yet: connecting or held. */
  active: number;
  /** Sessions that ran to their end. */
  completed: number;
  elapsedMs: number;
  /** Why sessions failed, with how many each. */
  failures: Record<string, number>;
}

/** Thrown by a session runner when no member took the session at all. */
export class NotAcceptedError extends Error {
  override readonly name = 'NotAcceptedError';
}

/** A hard cap so a mistyped rate cannot flood the machine. */
const maxSessions = 200_000;

/**
 * Steady demo traffic (SPEC §7 `ebb load`): a new session every 1/rate seconds, each given the current
 * member list, held for `holdMs`, then ended by the client.
 */
export async function runLoad(options: LoadOptions): Promise<LoadStats> {
  const stats: LoadStats = {
    started: 0,
    accepted: 0,
    failed: 0,
    dropped: 0,
    retried: 0,
    active: 0,
    completed: 0,
    elapsedMs: 0,
    failures: {},
  };
  const startedAt = Date.now();
  const total = Math.min(maxSessions, Math.floor((options.ratePerSecond * options.durationMs) / 1000));
  const sessions: Promise<void>[] = [];
  const progressTimer = options.onProgress
    ? setInterval(() => options.onProgress!({ ...stats, elapsedMs: Date.now() - startedAt }), 1000)
    : null;

  const runSession = async (n: number) => {
    stats.active++;
    const session = { taken: false, retried: false };
    const accepted = (retried: boolean) => {
      if (session.taken) return;
      session.taken = true;
      session.retried = retried;
      stats.accepted++;
      if (retried) stats.retried++;
    };
    try {
      const endpoints = await options.endpoints();
      try {
        await options.session({ endpoints, n, holdMs: options.holdMs, accepted });
      } catch (err) {
        // Issue 16 #8: every address of a cached answer refused — the answer may be stale (a member paused
        // or gone since). Ask DNS once more before failing; a session no member took is safe to retry.
        if (!(err instanceof NotAcceptedError) || session.taken) throw err;
        const fresh = await options.endpoints({ fresh: true });
        if (fresh.length === 0) throw err;
        await options.session({
          endpoints: fresh,
          n,
          holdMs: options.holdMs,
          accepted: () => accepted(true),
        });
      }
      accepted(false); // a runner that ended well without saying so was taken
      stats.completed++;
    } catch (err) {
      if (session.taken) {
        stats.accepted--;
        if (session.retried) stats.retried--;
        stats.dropped++;
      }
      stats.failed++;
      const why = (err as Error).message;
      stats.failures[why] = (stats.failures[why] ?? 0) + 1;
    } finally {
      stats.active--;
    }
  };

  for (let n = 0; n < total; n++) {
    const due = startedAt + (n * 1000) / options.ratePerSecond;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    stats.started++;
    sessions.push(runSession(n));
  }
  await Promise.all(sessions);
  if (progressTimer) clearInterval(progressTimer);
  stats.elapsedMs = Date.now() - startedAt;
  return stats;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
