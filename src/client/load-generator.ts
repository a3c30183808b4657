import type { Endpoint } from './pool-resolver.ts';

/** How one session of the load went: `retried` when a member refused it before another took it. */
export interface SessionOutcome {
  retried: boolean;
}

/** One kind of demo session (a TCP echo, a SIP call): refusals move it to the next member. */
export type SessionRunner = (endpoints: Endpoint[], n: number, holdMs: number) => Promise<SessionOutcome>;

export interface LoadOptions {
  /** The member list for each new session (a DNS answer). */
  endpoints: () => Promise<Endpoint[]>;
  session: SessionRunner;
  ratePerSecond: number;
  durationMs: number;
  holdMs: number;
  onProgress?: (stats: LoadStats) => void;
}

export interface LoadStats {
  started: number;
  /** Sessions some member took (and that then ran to their end, or failed). */
  accepted: number;
  failed: number;
  /** Sessions that reached a member only after another refused them. */
  retried: number;
  active: number;
  completed: number;
  elapsedMs: number;
  failures: Record<string, number>;
}

/** Thrown by a session runner when no member took the session at all. */
export class NotAcceptedError extends Error {}

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
    try {
      const outcome = await options.session(await options.endpoints(), n, options.holdMs);
      stats.accepted++;
      if (outcome.retried) stats.retried++;
      stats.completed++;
    } catch (err) {
      if (!(err instanceof NotAcceptedError)) stats.accepted++;
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
