import type { Logger } from 'pino';
import { defaultIntent, keptIntent, parseIntent, type ServiceIntent } from '../core/index.ts';
import type { PoolKeys, Store, Watcher } from '../store/index.ts';
import { bootIntent } from './boot-intent.ts';
import { LocalStateError, type LocalCopy, type LocalIntent, type LocalIntents } from './local-intents.ts';
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
  /**
   * This agent takes over from a running one (a hand-off, SPEC §13): the services carry on as they are,
   * so the start-up rules (`onRestart`, `startup`) that apply after a restart do not.
   */
  continuing?: boolean;
}

/** What boot and connect read from the store: its identity, and the member's intents at one revision. */
interface StoreRead {
  identity: string;
  revision: number;
  intents: Map<string, LocalIntent>;
}

/**
 * Keeps each slot's wanted intent in step with the store (SPEC §3): at boot from the store, or from the
 * agent's local copy when the store is out of reach, through the boot policy; then from a watch. Every
 * intent learnt is kept in the local copy before it is applied.
 *
 * The local copy records the identity of the store its intents came from. A store with another identity
 * was wiped or replaced (issue 16, fault 4): its intents are followed, except where the new store would
 * make a service accept and the local copy says it must not. That pause (or stop) is kept, written into
 * the new store as a kept intent, and said loudly; an operator decides (`ebb resume`, or `ebb pause` to
 * adopt it).
 */
export class IntentSync {
  private readonly options: IntentSyncOptions;
  /** Boot decisions (e.g. `onRestart: resume`) not yet written to the store; the store's older intent must not win. */
  private readonly pendingBootWrites = new Set<string>();
  private watcher: Watcher | null = null;
  private booted = false;
  private stopped = false;
  /** The identity of the store the local copy's intents belong to; null when not known (yet). */
  private copyStore: string | null = null;
  /** Boot served from the local copy: connect must check it came from the store it finds. */
  private bootedFromCopy = false;
  /** A replacing store whose identity the local copy takes once the kept intents are written into it. */
  private replacedBy: string | null = null;

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
    let copy: LocalCopy | null = null;
    let copyError: LocalStateError | null = null;
    try {
      copy = local.readCopy();
    } catch (err) {
      if (!(err instanceof LocalStateError)) throw err;
      copyError = err;
    }
    this.copyStore = copy?.storeIdentity ?? null;
    let stored: StoreRead;
    try {
      stored = await this.readStore(storeBootTimeoutMs);
    } catch (err) {
      if (!copy) {
        logger.error(
          { member, code: copyError!.code, err: copyError!.message, storeErr: (err as Error).message },
          'store unreachable and the local copy of the intents is unusable: services wait for the store',
        );
        return;
      }
      logger.warn(
        { member, err: (err as Error).message },
        'store unreachable at boot: using the local copy of the intents',
      );
      this.bootedFromCopy = true;
      this.decide(copy.intents);
      return;
    }
    if (copy && this.replaced(copy.intents, stored)) {
      const now = Date.now();
      this.booted = true;
      this.followReplacingStore(stored, (slot) => {
        const entry = copy.intents.get(slot.id);
        return entry && bootIntent(entry.intent, slot.config.onRestart, now);
      });
      return;
    }
    this.copyStore = stored.identity;
    this.decide(stored.intents);
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
    if (!this.booted || this.bootedFromCopy) {
      const stored = await this.readStore(null);
      if (!this.booted) {
        this.copyStore = stored.identity;
        this.decide(stored.intents);
      } else {
        this.bootedFromCopy = false;
        const wanted = new Map<string, LocalIntent>();
        for (const slot of this.options.slots.values()) if (slot.wanted) wanted.set(slot.id, slot.wanted);
        if (this.replaced(wanted, stored)) {
          this.followReplacingStore(stored, (slot) => slot.wanted?.intent);
        } else {
          this.copyStore = stored.identity;
        }
      }
    }
    for (const service of [...this.pendingBootWrites]) {
      const entry = this.options.slots.get(service)!.wanted!;
      const value = JSON.stringify(entry.intent);
      const revision = await store.put(keys.intent(member, service), value);
      this.pendingBootWrites.delete(service);
      this.learn(service, value, revision);
    }
    if (this.replacedBy !== null) {
      // Every kept intent is in the new store now: the local copy belongs to it from here on.
      this.copyStore = this.replacedBy;
      this.replacedBy = null;
      this.saveLocalCopy();
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
      const intent = this.options.continuing
        ? current.intent
        : bootIntent(current.intent, slot.config.onRestart, now);
      if (intent !== current.intent) this.pendingBootWrites.add(slot.id);
      slot.want({ intent, revision: current.revision });
    }
    this.saveLocalCopy();
  }

  /**
   * Whether the store is not the one the local copy came from: another identity, or (a copy written
   * before copies named their store) intents newer than the store's own revision.
   */
  private replaced(copy: ReadonlyMap<string, LocalIntent>, stored: StoreRead): boolean {
    if (this.copyStore !== null) return this.copyStore !== stored.identity;
    return [...copy.values()].some((entry) => entry.revision > stored.revision);
  }

  /**
   * The store was wiped or replaced: its revisions started again, so every slot is rebased on what it
   * holds, except where it would make a service accept that the local copy keeps from accepting (a
   * crash or a wipe never turns a paused service into an accepting one, SPEC §3). Those are kept and
   * written into the new store by `connect()`.
   */
  private followReplacingStore(
    stored: StoreRead,
    localOf: (slot: ServiceSlot) => ServiceIntent | undefined,
  ): void {
    const { logger, member } = this.options;
    const now = Date.now();
    const kept: string[] = [];
    this.pendingBootWrites.clear();
    for (const slot of this.options.slots.values()) {
      const inStore = stored.intents.get(slot.id) ?? {
        intent: defaultIntent(slot.config.startup, now),
        revision: 0,
      };
      const fromStore = bootIntent(inStore.intent, slot.config.onRestart, now);
      const local = localOf(slot);
      if (local && local.run !== 'running' && fromStore.run === 'running') {
        kept.push(`${slot.id} (${local.run})`);
        this.pendingBootWrites.add(slot.id);
        slot.rebase({ intent: keptIntent(local, this.copyStore, stored.identity, now), revision: 0 });
        continue;
      }
      if (fromStore !== inStore.intent) this.pendingBootWrites.add(slot.id);
      slot.rebase({ intent: fromStore, revision: inStore.revision });
    }
    this.replacedBy = stored.identity;
    const from = this.copyStore ?? 'an earlier store (its copy names none)';
    // Loud when it keeps something an operator must decide about; a warning when it only follows.
    logger[kept.length > 0 ? 'error' : 'warn'](
      { member, code: 'EBB_STORE_REPLACED', copyStore: this.copyStore, store: stored.identity, kept },
      kept.length > 0
        ? `the store was wiped or replaced (identity ${from}, now ${stored.identity}): keeping ` +
            `${kept.join(', ')} from the local copy, not accepting; an operator decides: ` +
            `ebb resume ${member} --service ID, or ebb pause ${member} --service ID to adopt the pause`
        : `the store was wiped or replaced (identity ${from}, now ${stored.identity}): ` +
            'following its intents; the local copy held no pause it lacks',
    );
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
      this.options.local.write(all, this.copyStore);
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

  private async readStore(timeoutMs: number | null): Promise<StoreRead> {
    const { store, keys, member } = this.options;
    const reading = Promise.all([store.identity(), store.snapshot([keys.intents(member)])]);
    const [identity, snapshot] = timeoutMs === null ? await reading : await withTimeout(reading, timeoutMs);
    const intents = new Map<string, LocalIntent>();
    for (const row of snapshot.rows[0] ?? []) {
      const parsed = keys.parse(row.key);
      const intent = parseIntent(row.value);
      if (parsed?.service && intent) intents.set(parsed.service, { intent, revision: row.modRevision });
    }
    return { identity, revision: snapshot.revision, intents };
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
