import type { Logger } from 'pino';
import { defaultIntent, parseIntent } from '../core/index.ts';
import type { PoolKeys, Store, Watcher } from '../store/index.ts';
import { bootIntent } from './boot-intent.ts';
import { LocalStateError, type LocalIntent, type LocalIntents } from './local-intents.ts';
import type { ServiceSlot } from './service-slot.ts';

/** How long boot waits for the shared store before using the local copy of the intents. */
const storeBootTimeoutMs = 3000;

export interface IntentSyncOptions {
  member: string;
  store: Store;
  keys: PoolKeys;
  logger: Logger;
  local: LocalIntents;
  slots: ReadonlyMap<string, ServiceSlot>;
}

/**
 * Keeps each slot's wanted intent in step with the store (SPEC §3): at boot from the store, or from the
 * agent's local copy when the store is out of reach, through the boot policy; then from a watch. Every
 * intent learnt is kept in the local copy before it is applied.
 */
export class IntentSync {
  private readonly options: IntentSyncOptions;
  /** Boot decisions (e.g. `onRestart: resume`) not yet written to the store; the store's older intent must not win. */
  private readonly pendingBootWrites = new Set<string>();
  private watcher: Watcher | null = null;
  private booted = false;
  private stopped = false;

  constructor(options: IntentSyncOptions) {
    this.options = options;
  }

  /**
   * Decides each service's boot intent from what is known now and hands it to its slot. When neither
   * the store nor an intact local copy answers, services stay stopped until the store does: a crash never
   * turns a paused service into an accepting one (SPEC §3).
   */
  async boot(): Promise<void> {
    const { logger, member, local } = this.options;
    let known: Map<string, LocalIntent>;
    try {
      known = await this.readStore(storeBootTimeoutMs);
    } catch (err) {
      try {
        known = local.read();
      } catch (localErr) {
        if (!(localErr instanceof LocalStateError)) throw localErr;
        logger.error(
          { member, code: localErr.code, err: localErr.message, storeErr: (err as Error).message },
          'store unreachable and the local copy of the intents is unusable: services wait for the store',
        );
        return;
      }
      logger.warn(
        { member, err: (err as Error).message },
        'store unreachable at boot: using the local copy of the intents',
      );
    }
    this.decide(known);
  }

  /**
   * Watches the member's intents, writes what boot decided, catches up on changes made while the store
   * was out of reach. Safe to call again after a failure.
   */
  async connect(): Promise<void> {
    if (this.stopped) return;
    const { store, keys, member } = this.options;
    const prefix = keys.intents(member);
    const learnRow = (row: { key: string; value: string | null; modRevision: number }) => {
      const parsed = keys.parse(row.key);
      if (parsed?.service && row.value !== null) this.learn(parsed.service, row.value, row.modRevision);
    };
    // After a gap in the watch the store hands over every intent as it is now: each newer one is learnt.
    this.watcher ??= await store.watch(prefix, (events) => events.forEach(learnRow), {
      onResync: (rows) => rows.forEach(learnRow),
    });
    if (!this.booted) this.decide(await this.readStore(null));
    for (const service of [...this.pendingBootWrites]) {
      const entry = this.options.slots.get(service)!.wanted!;
      const value = JSON.stringify(entry.intent);
      const revision = await store.put(keys.intent(member, service), value);
      this.pendingBootWrites.delete(service);
      this.learn(service, value, revision);
    }
    for (const row of await store.list(prefix)) learnRow(row);
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = null;
  }

  private decide(known: Map<string, LocalIntent>): void {
    if (this.booted) return;
    this.booted = true;
    const now = Date.now();
    for (const slot of this.options.slots.values()) {
      const current = known.get(slot.id) ?? { intent: defaultIntent(slot.config.startup, now), revision: 0 };
      const intent = bootIntent(current.intent, slot.config.onRestart, now);
      if (intent !== current.intent) this.pendingBootWrites.add(slot.id);
      slot.want({ intent, revision: current.revision });
    }
    this.saveLocalCopy();
  }

  /** A newer intent from the store: keep the local copy, hand it to the slot. */
  private learn(service: string, value: string, revision: number): void {
    const slot = this.options.slots.get(service);
    if (!slot || !this.booted || this.pendingBootWrites.has(service)) return;
    const intent = parseIntent(value);
    if (!intent) {
      this.options.logger.warn(
        { member: this.options.member, service, code: 'EBB_BAD_INTENT', revision },
        'ignoring an intent in the store that does not parse',
      );
      return;
    }
    if (slot.wanted && slot.wanted.revision >= revision) return;
    // The local copy first: a crash right after must still know this intent (SPEC §3).
    const entry = { intent, revision };
    this.saveLocalCopy(service, entry);
    slot.want(entry);
  }

  private saveLocalCopy(service?: string, entry?: LocalIntent): void {
    const all = new Map<string, LocalIntent>();
    for (const slot of this.options.slots.values()) {
      const wanted = slot.id === service ? entry : slot.wanted;
      if (wanted) all.set(slot.id, wanted);
    }
    try {
      this.options.local.write(all);
    } catch (err) {
      this.options.logger.error(
        {
          member: this.options.member,
          code: 'EBB_LOCAL_STATE_WRITE',
          err: (err as Error).message,
          path: this.options.local.path,
        },
        'cannot write the local copy of the intents',
      );
    }
  }

  private async readStore(timeoutMs: number | null): Promise<Map<string, LocalIntent>> {
    const { store, keys, member } = this.options;
    const listing = store.list(keys.intents(member));
    const rows = timeoutMs === null ? await listing : await withTimeout(listing, timeoutMs);
    const out = new Map<string, LocalIntent>();
    for (const row of rows) {
      const parsed = keys.parse(row.key);
      const intent = parseIntent(row.value);
      if (parsed?.service && intent) out.set(parsed.service, { intent, revision: row.modRevision });
    }
    return out;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
