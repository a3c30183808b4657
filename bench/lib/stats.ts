/** Small statistics and formatting helpers shared by the benchmarks. */

/** The p-th percentile (0–100) of `values` by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * The p50 and p99 of each run's values, each then the median over the runs: the figures the benchmarks
 * print (one noisy run moves them less than pooling every value would).
 */
export function runPercentiles<T>(
  runs: readonly T[],
  values: (run: T) => readonly number[],
): { p50: number; p99: number } {
  return {
    p50: median(runs.map((r) => median(values(r)))),
    p99: median(runs.map((r) => percentile(values(r), 99))),
  };
}

export function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((a, item) => a + value(item), 0);
}

/** `items` rotated left by `by`: run N starts with the Nth target, so no target always goes first. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  return items.map((_, i) => items[(i + by) % items.length]!);
}

/** Ebb's figure over the peer's, for "higher is better" and "lower is better" figures alike. */
export function ratio(ebb: number, peer: number): number {
  return peer === 0 || !Number.isFinite(peer) || !Number.isFinite(ebb) ? Number.NaN : ebb / peer;
}

export function fixed(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** A left-aligned first column and right-aligned others, for plain-text result tables. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
    )
    .join('\n');
}

/** Keeps a uniform random sample of at most `size` values from a stream of any length. */
export class Reservoir {
  readonly values: number[] = [];
  private seen = 0;
  private readonly size: number;

  constructor(size = 20_000) {
    this.size = size;
  }

  add(value: number): void {
    this.seen++;
    if (this.values.length < this.size) this.values.push(value);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < this.size) this.values[slot] = value;
    }
  }
}
