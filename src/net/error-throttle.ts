/** Something that failed with a stable code and, from the system, maybe an errno (EMFILE, …). */
export interface CodedError {
  readonly code: string;
  readonly errno?: string | undefined;
}

const defaultIntervalMs = 60_000;

/**
 * Passes on the first error of each code at once, then at most one per interval for that code with the
 * number left out in between: a descriptor shortage fails every accept (EMFILE), and the log should say
 * so once a minute, not thousands of times a second.
 */
export class ErrorThrottle<E extends CodedError> {
  readonly #report: (err: E, suppressed: number) => void;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #seen = new Map<string, { at: number; suppressed: number }>();

  constructor(
    report: (err: E, suppressed: number) => void,
    options: { intervalMs?: number; now?: () => number } = {},
  ) {
    this.#report = report;
    this.#intervalMs = options.intervalMs ?? defaultIntervalMs;
    this.#now = options.now ?? Date.now;
  }

  push(err: E): void {
    const key = `${err.code}/${err.errno ?? ''}`;
    const now = this.#now();
    const seen = this.#seen.get(key);
    if (seen && now - seen.at < this.#intervalMs) {
      seen.suppressed++;
      return;
    }
    this.#seen.set(key, { at: now, suppressed: 0 });
    this.#report(err, seen?.suppressed ?? 0);
  }
}
