/**
 * What every benchmark does the same way: its options (node:util parseArgs; numbers clamped to a range),
 * the header, the runs loop, and the result — one JSON document with `--json` (progress then goes to
 * stderr), else a plain-text table and notes on stdout. Cleanups run however the benchmark ends.
 */
import { parseArgs } from 'node:util';
import { machineNote, runCleanups } from './processes.ts';
import { table } from './stats.ts';

/** A number option: `[default, min, max]`. A value that is not a number takes the default; others are clamped. */
export type NumberSpec = readonly [fallback: number, min: number, max: number];

export interface BenchSpec<N extends string, S extends string, O extends string, F extends string> {
  numbers?: Record<N, NumberSpec>;
  /** String options with their defaults. */
  strings?: Record<S, string>;
  /** String options with no default. */
  optional?: readonly O[];
  /** Boolean options (false unless given). */
  flags?: readonly F[];
}

export interface Bench<N extends string, S extends string, O extends string, F extends string> {
  readonly name: string;
  /** `--json`: the result as one JSON document on stdout. */
  readonly json: boolean;
  /** `machineNote()` at the start, also printed as the first line. */
  readonly machine: string;
  readonly numbers: Record<N, number>;
  readonly strings: Record<S, string>;
  readonly optional: Record<O, string | undefined>;
  readonly flags: Record<F, boolean>;
  /** A progress line: stderr with `--json`, stdout otherwise. */
  log(line: string): void;
}

/** `value` as a number within `[min, max]`; `fallback` when it is missing or not a number. */
export function clampNumber(value: string | undefined, [fallback, min, max]: NumberSpec): number {
  const n = value === undefined || value.trim() === '' ? Number.NaN : Number(value);
  return Math.min(max, Math.max(min, Number.isFinite(n) ? n : fallback));
}

/** Parses the command line (`--json` always; unknown options are an error) and prints the machine line. */
export function startBench<
  const N extends string = never,
  const S extends string = never,
  const O extends string = never,
  const F extends string = never,
>(name: string, spec: BenchSpec<N, S, O, F>): Bench<N, S, O, F> {
  const numbers = (spec.numbers ?? {}) as Record<N, NumberSpec>;
  const strings = (spec.strings ?? {}) as Record<S, string>;
  const options: Record<string, { type: 'string' | 'boolean'; default?: string | boolean }> = {
    json: { type: 'boolean', default: false },
  };
  for (const key of Object.keys(numbers)) options[key] = { type: 'string' };
  for (const [key, value] of Object.entries<string>(strings))
    options[key] = { type: 'string', default: value };
  for (const key of spec.optional ?? []) options[key] = { type: 'string' };
  for (const key of spec.flags ?? []) options[key] = { type: 'boolean', default: false };
  const { values } = parseArgs({ options }) as { values: Record<string, string | boolean | undefined> };
  const text = (key: string) => (typeof values[key] === 'string' ? (values[key] as string) : undefined);
  const json = values['json'] === true;
  const bench: Bench<N, S, O, F> = {
    name,
    json,
    machine: machineNote(),
    numbers: Object.fromEntries(
      (Object.entries(numbers) as Array<[N, NumberSpec]>).map(([k, s]) => [k, clampNumber(text(k), s)]),
    ) as Record<N, number>,
    strings: Object.fromEntries(Object.keys(strings).map((k) => [k, text(k) ?? ''])) as Record<S, string>,
    optional: Object.fromEntries((spec.optional ?? []).map((k) => [k, text(k)])) as Record<
      O,
      string | undefined
    >,
    flags: Object.fromEntries((spec.flags ?? []).map((k) => [k, values[k] === true])) as Record<F, boolean>,
    log: (line) => (json ? process.stderr : process.stdout).write(`${line}\n`),
  };
  bench.log(`machine: ${bench.machine}`);
  return bench;
}

/**
 * Runs `one` `count` times, one after another; after each, logs `[label ]run N: <describe(result)>`.
 * Returns the results in order.
 */
export async function eachRun<T>(
  bench: Pick<Bench<string, string, string, string>, 'log'>,
  count: number,
  one: (run: number) => Promise<T>,
  describe?: (result: T, run: number) => string,
  label = '',
): Promise<T[]> {
  const results: T[] = [];
  for (let run = 0; run < count; run++) {
    const result = await one(run);
    results.push(result);
    if (describe) bench.log(`${label ? `${label} ` : ''}run ${run + 1}: ${describe(result, run)}`);
  }
  return results;
}

/**
 * The result: `doc` as JSON with `--json`; else a blank line, the table (first row: the header), and,
 * after another blank line, the notes.
 */
export function report(
  bench: Pick<Bench<string, string, string, string>, 'json'>,
  doc: object,
  rows: readonly (readonly string[])[],
  notes: readonly string[] = [],
): void {
  if (bench.json) {
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    return;
  }
  const lines = ['', table(rows), ...(notes.length > 0 ? ['', ...notes] : [])];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Runs a benchmark's `main`, then every cleanup (processes, temp dirs), whether it failed or not. */
export async function runBench(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } finally {
    await runCleanups();
  }
}
