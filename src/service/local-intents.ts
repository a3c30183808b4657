import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EbbError, parseIntent, type ServiceIntent } from '../core/index.ts';

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

  /**
   * The intents last written; empty when there is no copy yet (a first boot). A copy that cannot be read
   * or does not parse throws `LocalStateError` rather than reading as empty: an empty copy would bring a
   * paused service back accepting. The bad file is copied aside for the operator first.
   */
  read(): Map<string, LocalIntent> {
    return this.readCopy().intents;
  }

  /**
   * The intents and the identity of the store they came from (`Store.identity()`; null in a copy written
   * before copies had one, or before the store was ever reached).
   */
  readCopy(): LocalCopy {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { storeIdentity: null, intents: new Map() };
      throw new LocalStateError(`cannot read ${this.path}: ${(err as Error).message}`, err);
    }
    const out = new Map<string, LocalIntent>();
    let storeIdentity: string | null = null;
    try {
      const raw: unknown = JSON.parse(text);
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object');
      for (const [service, entry] of Object.entries(raw as Record<string, unknown>)) {
        if (service === storeIdentityField) {
          if (typeof entry !== 'string') throw new Error(`${storeIdentityField} is not a string`);
          storeIdentity = entry;
          continue;
        }
        const { intent, revision } = (entry ?? {}) as { intent?: unknown; revision?: unknown };
        const parsed = parseIntent(JSON.stringify(intent ?? null));
        if (!parsed || typeof revision !== 'number')
          throw new Error(`the entry of ${service} is not an intent`);
        out.set(service, { intent: parsed, revision });
      }
    } catch (err) {
      const aside = `${this.path}.corrupt-${Date.now()}`;
      try {
        copyFileSync(this.path, aside);
      } catch {
        // Keeping a copy aside is a courtesy; the error below is what matters.
      }
      throw new LocalStateError(
        `${this.path} is corrupt (${(err as Error).message}); copied to ${aside}`,
        err,
      );
    }
    return { storeIdentity, intents: out };
  }

  /** `storeIdentity`: the store these intents belong to (kept beside them; service ids cannot hold `$`). */
  write(intents: ReadonlyMap<string, LocalIntent>, storeIdentity: string | null = null): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    const copy = {
      ...(storeIdentity === null ? {} : { [storeIdentityField]: storeIdentity }),
      ...Object.fromEntries(intents),
    };
    writeFileSync(tmp, JSON.stringify(copy, null, 2));
    renameSync(tmp, this.path);
  }
}

export interface LocalCopy {
  storeIdentity: string | null;
  intents: Map<string, LocalIntent>;
}

const storeIdentityField = '$store';

/** The local copy of the intents exists but cannot be used. */
export class LocalStateError extends EbbError {
  constructor(message: string, cause: unknown) {
    super('EBB_LOCAL_STATE_CORRUPT', message, { cause });
  }
}
