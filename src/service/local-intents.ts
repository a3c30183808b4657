import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseIntent, type ServiceIntent } from '../core/index.ts';

export interface LocalIntent {
  intent: ServiceIntent;
  revision: number;
}

/**
 * The agent's own copy of its member's intents (SPEC §3), so it comes back right when the shared store
 * is unreachable at boot. Written with rename, so a crash leaves the old copy or the new, never half.
 */
export class LocalIntents {
  readonly path: string;

  constructor(dir: string, pool: string, member: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${pool}-${member}.json`);
  }

  read(): Map<string, LocalIntent> {
    const out = new Map<string, LocalIntent>();
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch {
      return out;
    }
    if (!raw || typeof raw !== 'object') return out;
    for (const [service, entry] of Object.entries(
      raw as Record<string, { intent: unknown; revision: unknown }>,
    )) {
      const intent = parseIntent(JSON.stringify(entry?.intent));
      if (intent) out.set(service, { intent, revision: Number(entry.revision) || 0 });
    }
    return out;
  }

  write(intents: ReadonlyMap<string, LocalIntent>): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(intents), null, 2));
    renameSync(tmp, this.path);
  }
}
