import type { z } from 'zod';
import type { PoolConfig } from './schema.ts';

/** Every field name the schema knows, for "did you mean" (collected once from the zod definitions). */
export function fieldNames(schema: z.ZodType): Set<string> {
  const names = new Set<string>();
  const seen = new Set<unknown>();
  const visit = (node: unknown) => {
    const def = (node as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
    if (!def || seen.has(def)) return;
    seen.add(def);
    if (def['type'] === 'object') {
      const shape = def['shape'] as Record<string, unknown>;
      for (const [key, value] of Object.entries(shape)) {
        names.add(key);
        visit(value);
      }
    }
    for (const key of ['element', 'innerType', 'in', 'out']) visit(def[key]);
    for (const option of (def['options'] as unknown[] | undefined) ?? []) visit(option);
  };
  visit(schema);
  return names;
}

/** Levenshtein distance, small strings only (field names). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = here;
    }
  }
  return row[b.length]!;
}

/** `listeners` for `listners`: the closest known name within one or two edits, or null. */
export function closestName(name: string, known: ReadonlySet<string>): string | null {
  if (known.has(name)) return null; // a real field, in the wrong place: no guess helps
  let best: string | null = null;
  // One edit for short names (`ca` is not a typo of `id`), two for longer ones.
  let bestDistance = name.length <= 4 ? 2 : 3;
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * A config that is valid but cannot work as meant (operator audit #33): a capacity guard no pool of this
 * size can satisfy refuses every pause and stop. Told by `ebb config check` and at start, as warnings.
 */
export function configWarnings(config: PoolConfig): string[] {
  const warnings: string[] = [];
  const members = config.members.length;
  if (config.pool.minAccepting >= members && config.pool.minAccepting > 0)
    warnings.push(
      `pool.minAccepting: ${config.pool.minAccepting} with ${members} member${members === 1 ? '' : 's'}: ` +
        'the capacity guard will refuse every pause and stop (without --force)',
    );
  config.members.forEach((member, m) =>
    member.services.forEach((service, s) => {
      if (service.minAccepting === undefined || service.minAccepting === 0) return;
      const having = config.members.filter((x) => x.services.some((y) => y.id === service.id)).length;
      if (service.minAccepting >= having)
        warnings.push(
          `members[${m}].services[${s}].minAccepting: ${service.minAccepting} with ${having} member(s) running ` +
            `${service.id}: the capacity guard will refuse every pause and stop of it (without --force)`,
        );
    }),
  );
  return warnings;
}
