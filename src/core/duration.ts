import { BadRequestError } from './errors.ts';

const unitsMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * The one duration grammar of the config, the API and the CLI: a decimal number and a unit (`500ms`,
 * `1.5s`, `10m`, `2h`, `1d`), or a bare number, which is seconds — as `pool.dnsTtl` and `retryAfter` are,
 * and as YAML reads `leaseTtl: 5` (a number).
 */
export const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;

/** What the examples in error messages show. */
export const durationExamples = '500ms, 30s, 10m, 2h; at most 30d';

/**
 * The longest duration anywhere (deadlines, timeouts, TTLs): `--deadline 99999d` is a typo, not a plan
 * (operator audit #41).
 */
export const maxDurationMs = 30 * unitsMs.d;

/** Milliseconds of a duration (surrounding blanks allowed); null when `text` is not one, or over 30d. */
export function durationMs(text: string): number | null {
  const match = durationPattern.exec(text.trim());
  if (!match) return null;
  const ms = Math.round(Number(match[1]) * unitsMs[(match[2] ?? 's') as keyof typeof unitsMs]);
  return Number.isSafeInteger(ms) && ms <= maxDurationMs ? ms : null;
}

/** Parses `500ms`, `30s`, `10m`, `2h`, `1d` (or a bare number of seconds) into milliseconds. */
export function parseDuration(text: string, field = 'duration'): number {
  const ms = durationMs(text);
  if (ms === null) {
    throw new BadRequestError([
      { path: field, message: `"${text}" is not a duration (e.g. ${durationExamples})` },
    ]);
  }
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
