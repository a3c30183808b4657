import type { Endpoint } from './pool-resolver.ts';

/** A forced re-resolve at most this often, however many sessions ask at once. */
const minRefreshGapMs = 200;

/**
 * Like a real client's stub resolver: keeps a DNS answer for its TTL and rotates the order for each new
 * session. A member paused within the TTL is still in the list: the connector meets its refusal and moves
 * on (counted as re-tried). When every cached address refused, `next({ fresh: true })` asks DNS again
 * before the TTL is up (issue 16 #8); concurrent asks share one query.
 */
export class CachedAnswers {
  private answer: Endpoint[] = [];
  private fetchedAt = 0;
  private forcedAt = 0;
  private turn = 0;
  private inFlight: Promise<void> | null = null;
  private readonly resolve: () => Promise<Endpoint[]>;
  private readonly ttlMs: number;

  constructor(resolve: () => Promise<Endpoint[]>, ttlMs: number) {
    this.resolve = resolve;
    this.ttlMs = ttlMs;
  }

  async next(options: { fresh?: boolean } = {}): Promise<Endpoint[]> {
    const now = Date.now();
    const stale = now - this.fetchedAt >= this.ttlMs || this.answer.length === 0;
    // Sessions that met the same stale answer ask together: the first one's query answers them all.
    const forced = options.fresh === true && now - this.forcedAt >= minRefreshGapMs;
    if (forced) this.forcedAt = now;
    if (stale || forced) await this.refresh();
    else if (options.fresh && this.inFlight) await this.inFlight;
    const start = this.turn++ % Math.max(1, this.answer.length);
    return [...this.answer.slice(start), ...this.answer.slice(0, start)];
  }

  private refresh(): Promise<void> {
    this.inFlight ??= this.resolve()
      .then((answer) => {
        this.answer = answer;
        this.fetchedAt = Date.now();
      })
      .finally(() => (this.inFlight = null));
    return this.inFlight;
  }
}
