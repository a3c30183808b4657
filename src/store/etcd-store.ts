import { Etcd3, EtcdLeaseInvalidError, isRecoverableError, type IKeyValue, type IRequestOp } from 'etcd3';
import { randomUUID } from 'node:crypto';
import { ConfigError, StoreError } from '../core/index.ts';
import { KeepAlive } from './etcd-keepalive.ts';
import { WatchStream, prefixRange, type EtcdWatch } from './etcd-watch-stream.ts';
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
/** Where the store's identity lives: beside the pools (`ebb/<pool>/`), never inside one (pool ids have no dot). */
const identityKey = 'ebb/.identity';
/** First pause between attempts of one call; it doubles up to `maxRetryPauseMs`. */
const firstRetryPauseMs = 50;
const maxRetryPauseMs = 400;

/**
 * The shared store for pools that span machines (SPEC §6): a real etcd cluster, through the `etcd3` gRPC
 * client. Store revisions are etcd's; a compare `modRevision: 0` is etcd's "mod_revision == 0", which holds
 * only for an absent key. Every call is bounded by `callTimeoutMs`, so an unreachable cluster surfaces as
 * `StoreError` instead of a hang. Watches (`WatchStream`) and keepalives (`KeepAlive`) notice a member that
 * stops answering, dead or frozen, and move to the next one; watches resume from the revision after the
 * last one delivered, and resync (re-list) when etcd has compacted that revision away. Leases are released,
 * not revoked, on `close()` so a crashed holder's keys expire with the TTL.
 */
export class EtcdStore implements Store {
  readonly kind = 'etcd' as const;
  readonly endpoints: readonly string[];
  private readonly client: Etcd3;
  private readonly memberClients: readonly Etcd3[];
  private readonly watchStream: WatchStream;
  private readonly callTimeoutMs: number;
  private readonly leases = new Set<EtcdLease>();
  private closing: Promise<void> | null = null;

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) {
      throw new ConfigError([{ path: 'store', message: 'etcd needs at least one endpoint' }], 'store');
    }
    this.endpoints = options.endpoints.map((e) => e.replace(/^https?:\/\//, ''));
    this.callTimeoutMs = options.callTimeoutMs ?? defaultCallTimeoutMs;
    this.client = this.newClient(this.endpoints);
    // Streams (watch, keepalive) get a client per member, so that one given up because its member stalled
    // is opened again on another member, not on whichever the pool happens to pick.
    this.memberClients = this.endpoints.map((e) => this.newClient([e]));
    this.watchStream = new WatchStream({
      clients: this.memberClients,
      relist: (prefix) => this.snapshot([prefix]),
    });
  }

  private newClient(endpoints: readonly string[]): Etcd3 {
    const attemptTimeoutMs = Math.ceil(this.callTimeoutMs / 3);
    return new Etcd3({
      hosts: endpoints.map((e) => `http://${e}`),
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
    const watch: EtcdWatch = this.watchStream.watch(prefix, onEvents, options);
    try {
      await this.call(`watch ${prefix}`, () => watch.started);
      this.assertOpen();
    } catch (err) {
      watch.close();
      throw err;
    }
    return watch;
  }

  /**
   * Created by the first client that asks, with a compare-and-set on its absence, so racing clients agree;
   * outside every pool's prefix. Deleting it (or wiping the cluster) makes a new store.
   */
  async identity(): Promise<string> {
    const key = Buffer.from(identityKey);
    const fresh = randomUUID();
    const res = await this.call('identity', () =>
      this.client.kv.txn({
        compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: 0 }],
        success: [{ request_put: { key, value: Buffer.from(fresh) } }],
        failure: [{ request_range: { key } }],
      }),
    );
    // A retried attempt whose first try created the key reads it back: the same answer either way.
    return res.succeeded ? fresh : res.responses[0]!.response_range.kvs[0]!.value.toString();
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    this.assertOpen();
    // etcd counts TTLs in whole seconds; rounding up never makes a lease shorter than asked.
    const ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const granted = await this.call(`grant lease (${ttlSeconds} s)`, () =>
      this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }),
    );
    // etcd may raise the TTL to its own minimum (1.5 election timeouts); renew for what it granted.
    const grantedMs = Math.max(ttlSeconds, Number(granted.TTL) || ttlSeconds) * 1000;
    if (this.closing) throw new StoreError('the store was closed while a lease was being granted');
    const lease = new EtcdLease(String(granted.ID), grantedMs, this, this.memberClients, () =>
      this.leases.delete(lease),
    );
    this.leases.add(lease);
    return lease;
  }

  /** Stops keepalives without revoking (a crash must let leases expire), cancels watches, closes the client. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const lease of this.leases) lease.release();
      this.leases.clear();
      this.watchStream.close();
      // Let the cancellations reach the wire before the channels close.
      await sleep(0);
      this.client.close();
      for (const client of this.memberClients) client.close();
    })();
    return this.closing;
  }

  /** @internal */
  get leaseClient(): Etcd3['leaseClient'] {
    return this.client.leaseClient;
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
  private readonly keepAlive: KeepAlive;
  private readonly store: EtcdStore;
  private readonly forget: () => void;
  private readonly lostListeners: Array<() => void> = [];
  private lost = false;

  constructor(id: string, ttlMs: number, store: EtcdStore, clients: readonly Etcd3[], forget: () => void) {
    this.id = id;
    this.ttlMs = ttlMs;
    this.store = store;
    this.forget = forget;
    this.keepAlive = new KeepAlive({ id, ttlMs, clients, onLost: () => this.markLost() });
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async revoke(): Promise<void> {
    this.forget();
    this.keepAlive.stop();
    try {
      await this.store.call(`revoke lease ${this.id}`, () =>
        this.store.leaseClient.leaseRevoke({ ID: this.id }),
      );
    } catch (err) {
      if (err instanceof StoreError && err.cause instanceof EtcdLeaseInvalidError) return; // gone already
      throw err;
    }
  }

  /** @internal Stops keepalives and lets the lease run out on the server. */
  release(): void {
    this.keepAlive.stop();
  }

  /** @internal */
  markLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.forget();
    this.keepAlive.stop();
    for (const listener of this.lostListeners) listener();
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

const neverAborted = new AbortController().signal;

function noEvent(): { dispose(): void } {
  return { dispose: () => {} };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
