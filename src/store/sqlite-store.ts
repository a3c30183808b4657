import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { StoreError } from '../core/index.ts';
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

/** How often each process looks for commits made by other processes (`PRAGMA data_version`). */
const pollIntervalMs = 10;
/** How often expired leases are swept (their keys deleted, as etcd does). */
const sweepIntervalMs = 200;
/** How many change records are kept for watchers that fall behind. */
const defaultChangeHistory = 10_000;
/** Trim the change log every this many sweeps (about every 5 s). */
const trimEverySweeps = 25;

interface Row {
  key: string;
  value: string;
  mod_rev: number;
  lease: string | null;
}
interface ChangeRow {
  seq: number;
  rev: number;
  key: string;
  value: string | null;
}
interface WatchEntry {
  prefix: string;
  onEvents: (events: WatchEvent[]) => void;
  options: WatchOptions;
}

export interface SqliteStoreOptions {
  /**
   * How many change records the log keeps for watchers of other processes that fall behind (default
   * 10 000); one that falls further behind resyncs. Tests make it small.
   */
  changeHistory?: number;
}

/**
 * The embedded store (SPEC §6): one SQLite file in WAL mode, shared by every Ebb process on the machine.
 * Revisions come from a change log; watchers are fed from it, so a commit by another process reaches
 * watchers here within `pollIntervalMs`. The schema version is part of the table names.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly stmt: Record<string, StatementSync>;
  private readonly watchers = new Set<WatchEntry>();
  private readonly changeHistory: number;
  private readonly leases = new Map<string, SqliteLease>();
  /** The last change record delivered to watchers, and its revision. */
  private lastSeenSeq: number;
  private lastSeenRev: number;
  private lastDataVersion = -1;
  private pollTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private sweeps = 0;
  private readonly storeIdentity: string;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path;
    this.changeHistory = options.changeHistory ?? defaultChangeHistory;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    try {
      this.db = new DatabaseSync(path, { timeout: 5000 });
      this.db.exec(`
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        CREATE TABLE IF NOT EXISTS kv_v1 (key TEXT PRIMARY KEY, value TEXT NOT NULL, mod_rev INTEGER NOT NULL, lease TEXT);
        CREATE INDEX IF NOT EXISTS kv_v1_lease ON kv_v1 (lease) WHERE lease IS NOT NULL;
        CREATE TABLE IF NOT EXISTS changes_v1 (seq INTEGER PRIMARY KEY AUTOINCREMENT, rev INTEGER NOT NULL, key TEXT NOT NULL, value TEXT);
        CREATE TABLE IF NOT EXISTS revision_v1 (id INTEGER PRIMARY KEY CHECK (id = 1), rev INTEGER NOT NULL);
        INSERT OR IGNORE INTO revision_v1 (id, rev) VALUES (1, 0);
        CREATE TABLE IF NOT EXISTS leases_v1 (id TEXT PRIMARY KEY, ttl_ms INTEGER NOT NULL, expires_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS meta_v1 (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      `);
      // Written by whichever process creates the file, never again (OR IGNORE keeps the first of two
      // racing); read first, so that opening an existing store writes nothing (a read-only or full disk).
      const readIdentity = () =>
        (
          this.db.prepare("SELECT value FROM meta_v1 WHERE name = 'identity'").get() as
            { value: string } | undefined
        )?.value;
      if (readIdentity() === undefined) {
        this.db
          .prepare("INSERT OR IGNORE INTO meta_v1 (name, value) VALUES ('identity', ?)")
          .run(randomUUID());
      }
      this.storeIdentity = String(readIdentity());
    } catch (err) {
      throw new StoreError(`cannot open SQLite store at ${path}: ${(err as Error).message}`, err);
    }
    const prepare = (sql: string) => this.db.prepare(sql);
    this.stmt = {
      get: prepare('SELECT key, value, mod_rev, lease FROM kv_v1 WHERE key = ?'),
      list: prepare('SELECT key, value, mod_rev, lease FROM kv_v1 WHERE key >= ? AND key < ? ORDER BY key'),
      upsert: prepare(
        'INSERT INTO kv_v1 (key, value, mod_rev, lease) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev, lease = excluded.lease',
      ),
      remove: prepare('DELETE FROM kv_v1 WHERE key = ?'),
      logChange: prepare('INSERT INTO changes_v1 (rev, key, value) VALUES (?, ?, ?)'),
      changesSince: prepare(
        'SELECT seq, rev, key, value FROM changes_v1 WHERE seq > ? ORDER BY seq LIMIT 5000',
      ),
      headRev: prepare('SELECT rev FROM revision_v1 WHERE id = 1'),
      bumpRev: prepare('UPDATE revision_v1 SET rev = rev + 1 WHERE id = 1'),
      headSeq: prepare(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes_v1'), 0) AS seq",
      ),
      trimChanges: prepare('DELETE FROM changes_v1 WHERE seq < ?'),
      dataVersion: prepare('PRAGMA data_version'),
      leaseInsert: prepare('INSERT INTO leases_v1 (id, ttl_ms, expires_at) VALUES (?, ?, ?)'),
      leaseRenew: prepare('UPDATE leases_v1 SET expires_at = ? WHERE id = ?'),
      leaseDelete: prepare('DELETE FROM leases_v1 WHERE id = ?'),
      leaseKeys: prepare('SELECT key FROM kv_v1 WHERE lease = ?'),
      expiredLeases: prepare('SELECT id FROM leases_v1 WHERE expires_at < ?'),
    };
    const head = this.inReadTransaction(() => ({ seq: this.headSeq(), rev: this.headRevision() }));
    this.lastSeenSeq = head.seq;
    this.lastSeenRev = head.rev;
  }

  static open(spec: string): SqliteStore {
    return new SqliteStore(spec.replace(/^sqlite:/, ''));
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const row = this.stmt.get!.get(key) as Row | undefined;
    return row ? toKeyValue(row) : undefined;
  }

  async list(prefix: string): Promise<KeyValue[]> {
    return this.listNow(prefix);
  }

  async snapshot(prefixes: readonly string[]): Promise<Snapshot> {
    this.assertOpen();
    return this.inReadTransaction(() => ({
      revision: this.headRevision(),
      rows: prefixes.map((prefix) => this.listNow(prefix)),
    }));
  }

  async put(key: string, value: string, options: { lease?: Lease } = {}): Promise<number> {
    const result = await this.txn(
      [],
      [{ type: 'put', key, value, ...(options.lease ? { lease: options.lease } : {}) }],
    );
    return result.revision;
  }

  async delete(key: string): Promise<boolean> {
    const existed = (await this.get(key)) !== undefined;
    if (existed) await this.txn([], [{ type: 'delete', key }]);
    return existed;
  }

  async txn(compares: Compare[], ops: TxnOp[]): Promise<TxnResult> {
    this.assertOpen();
    const result = this.inWriteTransaction(() => {
      for (const compare of compares) {
        const row = this.stmt.get!.get(compare.key) as Row | undefined;
        if ((row?.mod_rev ?? 0) !== compare.modRevision)
          return { succeeded: false, revision: this.headRevision() };
      }
      if (ops.length === 0) return { succeeded: true, revision: this.headRevision() };
      const revision = this.nextRevision();
      for (const op of ops) this.applyOp(op, revision);
      return { succeeded: true, revision };
    });
    if (result.succeeded && ops.length > 0) this.pump();
    return result;
  }

  async watch(
    prefix: string,
    onEvents: (events: WatchEvent[]) => void,
    options: WatchOptions = {},
  ): Promise<Watcher> {
    this.assertOpen();
    const entry: WatchEntry = { prefix, onEvents, options };
    this.pump();
    this.watchers.add(entry);
    this.startTimers();
    return { close: () => this.watchers.delete(entry) };
  }

  async identity(): Promise<string> {
    this.assertOpen();
    return this.storeIdentity;
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    this.assertOpen();
    const lease = new SqliteLease(randomUUID(), ttlMs, this);
    this.inWriteTransaction(() => this.stmt.leaseInsert!.run(lease.id, ttlMs, Date.now() + ttlMs));
    this.leases.set(lease.id, lease);
    this.startTimers();
    return lease;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const lease of [...this.leases.values()]) lease.stopRenewing();
    this.leases.clear();
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.watchers.clear();
    this.closed = true;
    this.db.close();
  }

  /** @internal Renews a lease; false when it has already expired and been swept. */
  renewLease(id: string, ttlMs: number): boolean {
    if (this.closed) return false;
    const result = this.inWriteTransaction(() => this.stmt.leaseRenew!.run(Date.now() + ttlMs, id));
    return Number(result.changes) > 0;
  }

  /** @internal */
  revokeLease(id: string): void {
    this.leases.delete(id);
    if (this.closed) return;
    this.inWriteTransaction(() => this.dropLease(id));
    this.pump();
  }

  private listNow(prefix: string): KeyValue[] {
    return (this.stmt.list!.all(prefix, prefixEnd(prefix)) as unknown as Row[]).map(toKeyValue);
  }

  /** Every key one transaction writes shares its revision, as in etcd. */
  private nextRevision(): number {
    this.stmt.bumpRev!.run();
    return this.headRevision();
  }

  private applyOp(op: TxnOp, revision: number): void {
    if (op.type === 'put') {
      this.stmt.logChange!.run(revision, op.key, op.value);
      this.stmt.upsert!.run(op.key, op.value, revision, op.lease?.id ?? null);
    } else if (this.stmt.get!.get(op.key)) {
      this.stmt.remove!.run(op.key);
      this.stmt.logChange!.run(revision, op.key, null);
    }
  }

  private dropLease(id: string): void {
    const keys = this.stmt.leaseKeys!.all(id) as Array<{ key: string }>;
    if (keys.length > 0) {
      const revision = this.nextRevision();
      for (const { key } of keys) this.applyOp({ type: 'delete', key }, revision);
    }
    this.stmt.leaseDelete!.run(id);
  }

  private inWriteTransaction<T>(work: () => T): T {
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      throw new StoreError(`SQLite store ${this.path} is busy: ${(err as Error).message}`, err);
    }
    try {
      const result = work();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      this.rollbackQuietly();
      throw err instanceof StoreError
        ? err
        : new StoreError(`SQLite store ${this.path}: write failed: ${(err as Error).message}`, err);
    }
  }

  /**
   * Ends a failed write transaction. On some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) SQLite has
   * already rolled it back by itself, and a ROLLBACK then fails with "no transaction is active"; that
   * second error must never hide the first, which is the one the operator needs ("database or disk is
   * full"). The connection stays usable: the next write starts a new transaction once space is back
   * (https://sqlite.org/lang_transaction.html, "Response To Errors Within A Transaction").
   */
  private rollbackQuietly(): void {
    if (!this.db.isTransaction) return;
    try {
      this.db.exec('ROLLBACK');
    } catch {
      // The transaction is gone either way; the caller reports the error that caused this.
    }
  }

  /**
   * Reads in one transaction: in WAL mode it sees the database as of its first read, so a commit by
   * another process cannot land between two of the reads (https://sqlite.org/isolation.html).
   */
  private inReadTransaction<T>(work: () => T): T {
    try {
      this.db.exec('BEGIN');
      try {
        return work();
      } finally {
        this.db.exec('COMMIT');
      }
    } catch (err) {
      this.rollbackQuietly();
      throw err instanceof StoreError
        ? err
        : new StoreError(`SQLite store read failed: ${(err as Error).message}`, err);
    }
  }

  private headSeq(): number {
    return Number((this.stmt.headSeq!.get() as { seq: number }).seq);
  }

  private headRevision(): number {
    return Number((this.stmt.headRev!.get() as { rev: number }).rev);
  }

  private startTimers(): void {
    if (this.closed) return;
    if (!this.pollTimer && this.watchers.size > 0) {
      this.pollTimer = setInterval(() => this.pollForeignCommits(), pollIntervalMs);
      this.pollTimer.unref();
    }
    if (!this.sweepTimer) {
      this.sweepTimer = setInterval(() => this.sweepExpiredLeases(), sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  /** `PRAGMA data_version` changes only when another connection commits: a cheap test before reading. */
  private pollForeignCommits(): void {
    if (this.closed) return;
    try {
      const version = Number((this.stmt.dataVersion!.get() as { data_version: number }).data_version);
      if (version === this.lastDataVersion) return;
      this.lastDataVersion = version;
      this.pump();
    } catch {
      // A busy or briefly locked database: the next tick tries again.
    }
  }

  /** Delivers every change after `lastSeenSeq` to the watchers. */
  private pump(): void {
    if (this.closed) return;
    for (;;) {
      const rows = this.stmt.changesSince!.all(this.lastSeenSeq) as unknown as ChangeRow[];
      if (rows.length === 0) return;
      // Trimming deletes the oldest records, and AUTOINCREMENT numbers the rest in sequence (a rolled-back
      // insert gives its number back): if the next record is missing, changes were trimmed before this
      // process delivered them. A number SQLite skipped for another reason costs only an unneeded resync.
      if (Number(rows[0]!.seq) > this.lastSeenSeq + 1) {
        this.resyncWatchers();
        continue;
      }
      this.lastSeenSeq = Number(rows[rows.length - 1]!.seq);
      this.lastSeenRev = Number(rows[rows.length - 1]!.rev);
      const events: WatchEvent[] = rows.map((r) => ({
        type: r.value === null ? 'delete' : 'put',
        key: r.key,
        value: r.value,
        modRevision: Number(r.rev),
      }));
      for (const watcher of [...this.watchers]) {
        const mine = events.filter((e) => e.key.startsWith(watcher.prefix));
        if (mine.length === 0) continue;
        try {
          watcher.onEvents(mine);
        } catch {
          // A watcher's bug must not stop other watchers from being fed.
        }
      }
    }
  }

  /**
   * Another process trimmed the change log past changes this one had not yet delivered: every watcher
   * gets its prefix's contents read at one revision, and delivery goes on from that read.
   */
  private resyncWatchers(): void {
    const watchers = [...this.watchers];
    const lastDelivered = this.lastSeenRev;
    const head = this.inReadTransaction(() => ({
      seq: this.headSeq(),
      revision: this.headRevision(),
      rows: watchers.map((w) => this.listNow(w.prefix)),
    }));
    this.lastSeenSeq = head.seq;
    this.lastSeenRev = head.revision;
    watchers.forEach((w, i) =>
      deliverResync(head.rows[i]!, head.revision, lastDelivered, w.onEvents, w.options),
    );
  }

  private sweepExpiredLeases(): void {
    if (this.closed) return;
    try {
      const now = Date.now();
      if ((this.stmt.expiredLeases!.all(now) as unknown[]).length > 0) {
        this.inWriteTransaction(() => {
          for (const { id } of this.stmt.expiredLeases!.all(now) as Array<{ id: string }>) this.dropLease(id);
        });
        this.pump();
      }
      for (const lease of [...this.leases.values()]) lease.checkAlive();
      if (++this.sweeps % trimEverySweeps === 0) this.trimChangeLog();
    } catch {
      // Busy: try at the next sweep.
    }
  }

  /**
   * @internal Keeps the change log bounded (tests call it to trim at once); a process whose watchers are
   * further behind than this resyncs them.
   */
  trimChangeLog(): void {
    const head = this.headSeq();
    if (head > this.changeHistory) {
      this.inWriteTransaction(() => this.stmt.trimChanges!.run(head - this.changeHistory));
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('the store is closed');
  }
}

class SqliteLease implements Lease {
  readonly id: string;
  readonly ttlMs: number;
  private readonly store: SqliteStore;
  private readonly lostListeners: Array<() => void> = [];
  private timer: NodeJS.Timeout | null;
  private lost = false;

  constructor(id: string, ttlMs: number, store: SqliteStore) {
    this.id = id;
    this.ttlMs = ttlMs;
    this.store = store;
    // Renew at a third of the TTL, as etcd clients do, so one missed renewal is not fatal.
    this.timer = setInterval(() => this.checkAlive(), Math.max(50, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async revoke(): Promise<void> {
    this.stopRenewing();
    this.store.revokeLease(this.id);
  }

  /** @internal */
  checkAlive(): void {
    if (this.lost || !this.timer) return;
    let alive: boolean;
    try {
      alive = this.store.renewLease(this.id, this.ttlMs);
    } catch {
      return; // busy: renew next time
    }
    if (!alive) {
      this.lost = true;
      this.stopRenewing();
      for (const listener of this.lostListeners) listener();
    }
  }

  /** @internal */
  stopRenewing(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function toKeyValue(row: Row): KeyValue {
  return { key: row.key, value: row.value, modRevision: Number(row.mod_rev), lease: row.lease };
}

/** The smallest string greater than every string with this prefix. */
function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}
