import {
  Etcd3,
  EtcdLeaseInvalidError,
  isRecoverableError,
  type IKeyValue,
  type IRequestOp,
  type IWatchResponse,
  type Lease as Etcd3Lease,
  type Watcher as Etcd3Watcher,
} from 'etcd3';
import { ConfigError, StoreError } from '../core/index.ts';
import type {
  Compare,
  KeyValue,
  Lease,
  Snapshot,
  Store,
  TxnOp,
  TxnResult,
  WatchEvent,
  WatchOptions,
  Watcher,
} from './store.ts';
import { deliverResync } from './watch-resync.ts';

export interface EtcdStoreOptions {
  /** `host:port` (or `http://host:port`) of each etcd member's client URL. */
  endpoints: string[];
  /**
   * Budget for one store call, retries on other members included; past it the call fails with `StoreError`.
   * Each attempt gets a third of it.
   */
  callTimeoutMs?: number;
}

const defaultCallTimeoutMs = 3000;
/** First pause between attempts of one call; it doubles up to `maxRetryPauseMs`. */
const firstRetryPauseMs = 50;
const maxRetryPauseMs = 400;
/** A lost watch stream is re-opened after 100 ms, doubling up to this, so it never lags long after etcd is back. */
const maxWatchBackoffMs = 2000;
/** A watch that must resync re-lists after this if the store cannot be read, doubling up to `maxWatchBackoffMs`. */
const firstResyncPauseMs = 100;
/** How long `close()` waits for etcd to acknowledge watch cancellations before closing the connection anyway. */
const closeGraceMs = 1000;

/**
 * The shared store for pools that span machines (SPEC §6): a real etcd cluster, through the `etcd3` gRPC
 * client. Store revisions are etcd's; a compare `modRevision: 0` is etcd's "mod_revision == 0", which holds
 * only for an absent key. Every call is bounded by `callTimeoutMs`, so an unreachable cluster surfaces as
 * `StoreError` instead of a hang. Watches resume after member loss from the revision after the last one
 * delivered, and resync (re-list) when etcd has compacted that revision away; leases are kept alive by
 * etcd3 and are released, not revoked, on `close()` so a crashed holder's keys expire with the TTL.
 */
export class EtcdStore implements Store {
  readonly kind = 'etcd' as const;
  readonly endpoints: readonly string[];
  private readonly client: Etcd3;
  private readonly callTimeoutMs: number;
  private readonly leases = new Set<EtcdLease>();
  private readonly watches = new Set<EtcdWatch>();
  private closing: Promise<void> | null = null;

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) {
      throw new ConfigError([{ path: 'store', message: 'etcd needs at least one endpoint' }], 'store');
    }
    this.endpoints = options.endpoints.map((e) => e.replace(/^https?:\/\//, ''));
    this.callTimeoutMs = options.callTimeoutMs ?? defaultCallTimeoutMs;
    const attemptTimeoutMs = Math.ceil(this.callTimeoutMs / 3);
    this.client = new Etcd3({
      hosts: this.endpoints.map((e) => `http://${e}`),
      // Unary calls get a deadline per attempt; streams (watch, keepalive) live until closed. A write sent to
      // a follower whose leader just died is not answered until etcd's own request timeout (5 s and more),
      // so a short attempt and a retry elsewhere is what carries a call over a leader election.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + attemptTimeoutMs }),
      grpcOptions: {
        // gRPC's default reconnect backoff grows to 120 s; a restarted member should be used again soon.
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2000,
        // Detects a member that vanished without closing the connection; etcd refuses pings under 5 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5000,
      },
      faultHandling: {
        global: new RetryWithinBudget(this.callTimeoutMs),
        host: () => passThrough,
        watchBackoff: watchBackoff(100),
      },
    });
  }

  /** `etcd://host:port[,host:port...]` (SPEC §6). */
  static open(spec: string, options: Omit<EtcdStoreOptions, 'endpoints'> = {}): EtcdStore {
    const endpoints = spec
      .replace(/^etcd:\/\//, '')
      .split(',')
      .filter(Boolean);
    for (const endpoint of endpoints) {
      if (!/^[^\s/:,]+:\d{1,5}$/.test(endpoint) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(endpoint)) {
        throw new ConfigError(
          [{ path: 'store', message: `"${endpoint}" is not host:port in ${spec}` }],
          'store',
        );
      }
    }
    return new EtcdStore({ ...options, endpoints });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call(`get ${key}`, () => this.client.kv.range({ key: Buffer.from(key) }));
    return res.kvs[0] ? toKeyValue(res.kvs[0]) : undefined;
  }

  async list(prefix: string): Promise<KeyValue[]> {
    const res = await this.call(`list ${prefix}`, () =>
      this.client.kv.range({
        ...prefixRange(prefix),
        sort_order: 'Ascend',
        sort_target: 'Key',
      }),
    );
    return res.kvs.map(toKeyValue);
  }

  async snapshot(prefixes: readonly string[]): Promise<Snapshot> {
    // One Txn without compares runs its success ops, here only ranges, against one revision of the store
    // (etcd API guarantees: KV operations are atomic and totally ordered); etcd serves a read-only Txn as a
    // linearizable read. etcd caps a Txn at 128 operations (--max-txn-ops), so at most 128 prefixes.
    const res = await this.call(`snapshot ${prefixes.join(' ')}`, () =>
      this.client.kv.txn({
        success: prefixes.map((prefix) => ({
          request_range: { ...prefixRange(prefix), sort_order: 'Ascend', sort_target: 'Key' },
        })),
      }),
    );
    return {
      revision: Number(res.header.revision),
      rows: res.responses.map((r) => r.response_range.kvs.map(toKeyValue)),
    };
  }

  async put(key: string, value: string, options: { lease?: Lease } = {}): Promise<number> {
    const lease = options.lease;
    try {
      const res = await this.call(`put ${key}`, () =>
        this.client.kv.put({
          key: Buffer.from(key),
          value: Buffer.from(value),
          ...(lease ? { lease: lease.id } : {}),
        }),
      );
      return Number(res.header.revision);
    } catch (err) {
      if (
        lease instanceof EtcdLease &&
        err instanceof StoreError &&
        err.cause instanceof EtcdLeaseInvalidError
      ) {
        lease.markLost();
      }
      throw err;
    }
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.call(`delete ${key}`, () => this.client.kv.deleteRange({ key: Buffer.from(key) }));
    return Number(res.deleted) > 0;
  }

  async txn(compares: Compare[], ops: TxnOp[]): Promise<TxnResult> {
    const keys = [...compares, ...ops].map((x) => x.key);
    const what = `txn on ${keys.slice(0, 4).join(' ')}${keys.length > 4 ? ` and ${keys.length - 4} more` : ''}`;
    const res = await this.call(what, () =>
      this.client.kv.txn({
        // An absent key has mod_revision 0 in etcd's compare, so `modRevision: 0` means "does not exist".
        compare: compares.map((c) => ({
          key: Buffer.from(c.key),
          target: 'Mod',
          result: 'Equal',
          mod_revision: c.modRevision,
        })),
        success: ops.map(toRequestOp),
      }),
    );
    return { succeeded: res.succeeded, revision: Number(res.header.revision) };
  }

  async watch(
    prefix: string,
    onEvents: (events: WatchEvent[]) => void,
    options: WatchOptions = {},
  ): Promise<Watcher> {
    this.assertOpen();
    const watch = new EtcdWatch({
      client: this.client,
      prefix,
      onEvents,
      options,
      relist: () => this.snapshot([prefix]),
      forget: () => this.watches.delete(watch),
    });
    this.watches.add(watch);
    try {
      await this.call(`watch ${prefix}`, () => watch.started);
      this.assertOpen();
    } catch (err) {
      watch.close();
      throw err;
    }
    return watch;
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    this.assertOpen();
    // etcd counts TTLs in whole seconds; rounding up never makes a lease shorter than asked.
    const ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const inner = this.client.lease(ttlSeconds);
    let id: string;
    try {
      id = await this.call(`grant lease (${ttlSeconds} s)`, () => inner.grant());
    } catch (err) {
      inner.release(); // a grant that answers late must not start keepalives nobody owns
      throw err;
    }
    if (this.closing) {
      inner.release();
      throw new StoreError('the store was closed while a lease was being granted');
    }
    const lease = new EtcdLease(id, ttlSeconds * 1000, inner, this, () => this.leases.delete(lease));
    this.leases.add(lease);
    return lease;
  }

  /** Stops keepalives without revoking (a crash must let leases expire), cancels watches, closes the client. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const lease of this.leases) lease.release();
      this.leases.clear();
      const cancels = [...this.watches].map((w) => w.cancel());
      this.watches.clear();
      await Promise.race([Promise.all(cancels), sleep(closeGraceMs)]);
      this.client.close();
    })();
    return this.closing;
  }

  /** @internal Runs one etcd call within the budget and turns every failure into `StoreError`. */
  async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    this.assertOpen();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreError(
              `etcd ${this.endpoints.join(',')}: ${what}: no answer in ${this.callTimeoutMs} ms`,
            ),
          ),
        this.callTimeoutMs,
      );
    });
    try {
      return await Promise.race([run(), timeout]);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      // gRPC appends an empty "Resolution note:" to connection errors.
      const reason = String((err as Error).message).replace(/\.?\s*Resolution note:\s*$/, '');
      throw new StoreError(`etcd ${this.endpoints.join(',')}: ${what} failed: ${reason}`, err);
    } finally {
      clearTimeout(timer);
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new StoreError('the store is closed');
  }
}

class EtcdLease implements Lease {
  readonly id: string;
  readonly ttlMs: number;
  private readonly inner: Etcd3Lease;
  private readonly store: EtcdStore;
  private readonly forget: () => void;
  private readonly lostListeners: Array<() => void> = [];
  private lost = false;

  constructor(id: string, ttlMs: number, inner: Etcd3Lease, store: EtcdStore, forget: () => void) {
    this.id = id;
    this.ttlMs = ttlMs;
    this.inner = inner;
    this.store = store;
    this.forget = forget;
    // etcd3 emits `lost` when a keepalive answers TTL 0 (expired or revoked elsewhere), or when it could not
    // renew for two TTLs.
    inner.on('lost', () => this.markLost());
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async revoke(): Promise<void> {
    this.forget();
    await this.store.call(`revoke lease ${this.id}`, () => this.inner.revoke());
  }

  /** @internal Stops keepalives and lets the lease run out on the server. */
  release(): void {
    this.inner.release();
  }

  /** @internal */
  markLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.forget();
    this.inner.release();
    for (const listener of this.lostListeners) listener();
  }
}

interface EtcdWatchParts {
  client: Etcd3;
  prefix: string;
  onEvents: (events: WatchEvent[]) => void;
  options: WatchOptions;
  /** Every key under the prefix at one revision, within the store's call budget. */
  relist: () => Promise<Snapshot>;
  forget: () => void;
}

/**
 * One prefix watch. etcd3 re-opens the stream after a member is lost, from a revision it tracks; that
 * revision can run ahead of what was delivered (it takes the header of a created or catch-up response),
 * so this class pins `start_revision` to the revision after the last event delivered and drops repeats.
 * When etcd cancels the watch instead (that revision was compacted away: ErrCompacted), the changes in
 * between are gone: it re-lists the prefix, resyncs the caller and watches on from that read's revision.
 */
class EtcdWatch implements Watcher {
  /** Resolves once etcd has created the watch: every change after that is delivered. */
  readonly started: Promise<void>;
  private readonly parts: EtcdWatchParts;
  private inner: Etcd3Watcher | null = null;
  /** The first revision not yet delivered; 0 until etcd has told us where the watch starts. */
  private nextRevision = 0;
  private closed = false;

  constructor(parts: EtcdWatchParts) {
    this.parts = parts;
    this.started = new Promise((resolve) => this.attach(resolve));
  }

  close(): void {
    void this.cancel();
  }

  /** @internal */
  async cancel(): Promise<void> {
    this.closed = true;
    this.parts.forget();
    const inner = this.inner;
    this.inner = null;
    await inner?.cancel().catch(() => {});
  }

  private attach(onCreated: () => void): void {
    const range = prefixRange(this.parts.prefix);
    let builder = this.parts.client.watch().inRange({ start: range.key, end: range.range_end });
    if (this.nextRevision > 0) builder = builder.startRevision(String(this.nextRevision));
    const inner = builder.watcher();
    this.inner = inner;
    inner.on('connected', (res) => {
      if (this.nextRevision === 0) this.nextRevision = Number(res.header.revision) + 1;
      this.pin(inner);
      onCreated();
    });
    inner.on('data', (res) => this.deliver(inner, res));
    // etcd cancelled the watch and etcd3 dropped it. etcd cancels a watch whose start revision was
    // compacted (the response carries compact_revision); whatever the reason, the stream cannot resume.
    inner.on('error', () => {
      if (this.closed || this.inner !== inner) return;
      this.inner = null;
      if (this.nextRevision === 0) {
        // Never created, so nothing was delivered and nothing can be missed: try again from the present.
        setTimeout(() => !this.closed && this.attach(onCreated), 500).unref();
      } else {
        void this.resync(firstResyncPauseMs);
      }
    });
  }

  /** Re-lists the prefix (retrying while the store is unreachable), hands it over, watches on after it. */
  private async resync(pauseMs: number): Promise<void> {
    let snapshot: Snapshot;
    try {
      snapshot = await this.parts.relist();
    } catch {
      if (this.closed) return;
      const next = Math.min(pauseMs * 2, maxWatchBackoffMs);
      setTimeout(() => !this.closed && void this.resync(next), pauseMs).unref();
      return;
    }
    if (this.closed) return;
    const lastDelivered = this.nextRevision - 1;
    this.nextRevision = snapshot.revision + 1;
    const { onEvents, options } = this.parts;
    deliverResync(snapshot.rows[0] ?? [], snapshot.revision, lastDelivered, onEvents, options);
    if (!this.closed) this.attach(() => {});
  }

  private deliver(inner: Etcd3Watcher, res: IWatchResponse): void {
    if (this.closed || this.inner !== inner) return;
    const events: WatchEvent[] = [];
    for (const ev of res.events) {
      const modRevision = Number(ev.kv.mod_revision);
      if (modRevision < this.nextRevision) continue; // replayed after a reconnect
      events.push({
        type: ev.type === 'Delete' ? 'delete' : 'put',
        key: ev.kv.key.toString(),
        value: ev.type === 'Delete' ? null : ev.kv.value.toString(),
        modRevision,
      });
    }
    if (events.length > 0) {
      this.nextRevision = events[events.length - 1]!.modRevision + 1;
    } else if (res.events.length === 0) {
      // A progress notification: etcd sends it only to a watch that is caught up to the header revision.
      this.nextRevision = Math.max(this.nextRevision, Number(res.header.revision) + 1);
    }
    this.pin(inner);
    if (events.length === 0) return;
    try {
      this.parts.onEvents(events);
    } catch {
      // A subscriber's bug must not break the watch stream (etcd3 would rethrow it outside any handler).
    }
  }

  private pin(inner: Etcd3Watcher): void {
    inner.request.start_revision = String(this.nextRevision);
  }
}

/**
 * etcd3's global fault policy (cockatiel's `IPolicy` shape): retry what etcd3 calls recoverable (unavailable,
 * deadline exceeded, …) on the next member, pausing 50, 100, 200, 400 ms, until the call's budget is spent.
 * It replaces etcd3's default of three immediate retries, which all land inside a leader election.
 */
class RetryWithinBudget {
  declare readonly _altReturn: never;
  readonly onSuccess = noEvent;
  readonly onFailure = noEvent;
  private readonly budgetMs: number;

  constructor(budgetMs: number) {
    this.budgetMs = budgetMs;
  }

  async execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
    const deadline = Date.now() + this.budgetMs;
    for (let pause = firstRetryPauseMs; ; pause = Math.min(pause * 2, maxRetryPauseMs)) {
      try {
        return await fn({ signal: neverAborted });
      } catch (err) {
        if (!(err instanceof Error) || !isRecoverableError(err) || Date.now() + pause >= deadline) throw err;
        await sleep(pause);
      }
    }
  }
}

/**
 * The per-member policy: none. etcd3's default circuit breaker shuts a member out for 5 s after three
 * failures in a row, and during an election the healthy followers fail too, which would shut out all of them.
 * A dead member costs little without it: gRPC fails calls to it at once while it reconnects in the background.
 */
const passThrough = {
  _altReturn: undefined as never,
  onSuccess: noEvent,
  onFailure: noEvent,
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> =>
    fn({ signal: neverAborted }),
};

/** Doubling backoff for re-opening watch streams, in etcd3's (cockatiel's) `IBackoff` shape. */
interface Backoff {
  readonly duration: number;
  next(): Backoff;
}

function watchBackoff(duration: number): Backoff {
  return { duration, next: () => watchBackoff(Math.min(duration * 2, maxWatchBackoffMs)) };
}

function toRequestOp(op: TxnOp): IRequestOp {
  if (op.type === 'delete') return { request_delete_range: { key: Buffer.from(op.key) } };
  return {
    request_put: {
      key: Buffer.from(op.key),
      value: Buffer.from(op.value),
      ...(op.lease ? { lease: op.lease.id } : {}),
    },
  };
}

function toKeyValue(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: Number(kv.mod_revision),
    lease: kv.lease && kv.lease !== '0' ? String(kv.lease) : null,
  };
}

/** etcd's range for "every key starting with prefix": [prefix, prefix with its last byte below 0xff + 1). */
function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
  const key = Buffer.from(prefix);
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return { key: prefix === '' ? Buffer.from([0]) : key, range_end: end.subarray(0, i + 1) };
    }
  }
  // Empty prefix, or only 0xff bytes: "\0" as range_end means "to the end of the keyspace".
  return { key: prefix === '' ? Buffer.from([0]) : key, range_end: Buffer.from([0]) };
}

const neverAborted = new AbortController().signal;

function noEvent(): { dispose(): void } {
  return { dispose: () => {} };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
