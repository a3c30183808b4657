/**
 * Deadlines for many records at one-second granularity: `schedule(key, at)` files the key in the bucket of
 * that second, `sweep(now, check)` hands out every key whose bucket has passed. The caller's `check` looks
 * at the record's own deadline, so a key filed twice (a deadline moved) or a record already gone costs
 * nothing but a lookup: nothing is ever removed from a bucket early. Work per sweep is proportional to
 * the keys that fall due, not to the number of records.
 */
export class ExpiryWheel {
  readonly #buckets = new Map<number, string[]>();
  #swept: number;

  constructor(now: number) {
    this.#swept = Math.floor(now / 1000) - 1;
  }

  schedule(key: string, at: number): void {
    const second = Math.max(Math.floor(at / 1000), this.#swept + 1);
    const bucket = this.#buckets.get(second);
    if (bucket) bucket.push(key);
    else this.#buckets.set(second, [key]);
  }

  /** Calls `check` for every key filed in a second that has fully passed by `now`. */
  sweep(now: number, check: (key: string) => void): void {
    const until = Math.floor(now / 1000) - 1;
    if (until <= this.#swept) return;
    // Walk the filed seconds, not every second in between: a sweep after a long pause stays cheap.
    const due = [...this.#buckets.keys()].filter((s) => s <= until).sort((a, b) => a - b);
    this.#swept = until;
    for (const second of due) {
      const keys = this.#buckets.get(second)!;
      this.#buckets.delete(second);
      for (const key of keys) check(key);
    }
  }

  get filed(): number {
    let n = 0;
    for (const keys of this.#buckets.values()) n += keys.length;
    return n;
  }

  clear(): void {
    this.#buckets.clear();
  }
}
