/**
 * The shared state of a pool: a small key-value interface shaped after etcd's (revisions, compare-and-set
 * transactions, watches, leases) so the embedded SQLite store and the etcd store are interchangeable
 * (SPEC §6). One conformance suite (`store-conformance.ts`) runs against every implementation.
 */
export interface KeyValue {
  key: string;
  value: string;
  /** Store revision of the last write to this key. */
  modRevision: number;
  /** Lease the key is attached to, if any. */
  lease: string | null;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value for a put; null for a delete. */
  value: string | null;
  modRevision: number;
}

/** Holds when the key's modRevision equals the given one; 0 means "the key does not exist". */
export interface Compare {
  key: string;
  modRevision: number;
}

export type TxnOp =
  { type: 'put'; key: string; value: string; lease?: Lease } | { type: 'delete'; key: string };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
}

export interface Watcher {
  close(): void;
}

/** Every key under each of several prefixes, read at one store revision. */
export interface Snapshot {
  /** The store's revision when the read happened: no key in `rows` has a larger `modRevision`. */
  revision: number;
  /** `rows[i]` holds every key under `prefixes[i]`, sorted by key. */
  rows: KeyValue[][];
}

export interface WatchOptions {
  /**
   * Called when the watch cannot resume without a gap — etcd compacted the revisions it would resume
   * from, or cancelled it; a SQLite watcher fell behind the trimmed change log — with every key now under
   * the prefix and the revision they were read at. It replaces whatever the caller knew (a key missing
   * from `rows` was deleted); events after `revision` follow. It may come when nothing under the prefix
   * changed. Without it the store delivers, as puts in revision order, the current value of every key
   * written during the gap, but deletes made during the gap cannot be reported: a caller that keeps state
   * (a read model, a cache) must pass `onResync`.
   */
  onResync?: (rows: KeyValue[], revision: number) => void;
}

/** A liveness token: keys put with a lease disappear when its holder stops renewing it. */
export interface Lease {
  readonly id: string;
  readonly ttlMs: number;
  /** Called once if the lease is found expired or the store lost it; the holder should grant a new one. */
  onLost(listener: () => void): void;
  revoke(): Promise<void>;
}

export interface Store {
  readonly kind: 'sqlite' | 'etcd';
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key starting with `prefix`, sorted by key. */
  list(prefix: string): Promise<KeyValue[]>;
  /**
   * Every key under each prefix, all read at one store revision (one etcd Txn of ranges; one SQLite read
   * transaction), so a commit cannot land between two of the reads. `rows[i]` is for `prefixes[i]`.
   */
  snapshot(prefixes: readonly string[]): Promise<Snapshot>;
  put(key: string, value: string, options?: { lease?: Lease }): Promise<number>;
  delete(key: string): Promise<boolean>;
  /** Atomically: if every compare holds, apply every op. */
  txn(compares: Compare[], ops: TxnOp[]): Promise<TxnResult>;
  /**
   * Calls `onEvents` with every change under `prefix` after the watch is set up, in revision order. Never
   * skips silently: where history is gone it resyncs (see `WatchOptions.onResync`).
   */
  watch(prefix: string, onEvents: (events: WatchEvent[]) => void, options?: WatchOptions): Promise<Watcher>;
  /**
   * The store's identity: a random id written once, when the store was created, and never changed. A
   * store that was wiped or replaced by a new one has another, which is how an agent knows its local copy
   * of the intents came from a store that is gone (issue 16, fault 4). Not under any pool's prefix.
   */
  identity(): Promise<string>;
  /** A lease kept alive by this store until revoked or the store closes. */
  grantLease(ttlMs: number): Promise<Lease>;
  close(): Promise<void>;
}
