import type { Etcd3, IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import type { Snapshot, WatchEvent, WatchOptions, Watcher } from './store.ts';
import { deliverResync } from './watch-resync.ts';

/** A progress request goes down the stream this often while it carries watches. */
const progressEveryMs = 500;
/**
 * The stream counts as stalled when this many progress requests in a row, sent while this process was
 * running, got no answer: its member is frozen or cut off yet keeps the connection (issue 16, fault 2).
 */
const unansweredLimit = 3;
/** A failed stream is opened again after this, doubling up to `maxReopenMs`, on the next member. */
const firstReopenMs = 100;
const maxReopenMs = 2000;
/** A watch that must resync re-lists after this if the store cannot be read, doubling up to `maxReopenMs`. */
const firstResyncPauseMs = 100;

export interface WatchStreamParts {
  /** One client per etcd member, in the order of the store's endpoints: a stalled stream moves to the next. */
  clients: readonly Etcd3[];
  /** Every key under a prefix at one revision, within the store's call budget. */
  relist: (prefix: string) => Promise<Snapshot>;
}

/**
 * The one gRPC watch stream of an `EtcdStore`, which carries every watch of the store, with a watchdog.
 *
 * etcd3 cannot send the "require leader" flag, and its own watch manager waits on a stream whose member is
 * frozen (SIGSTOP) or cut off from the others until gRPC keepalive gives up, 15 s later. Here a progress
 * request (etcd v3.4+) goes down the stream every 500 ms; every answer, event or notification counts as
 * life. Three unanswered in a row and the stream is dropped and opened on the next member, where every
 * watch resumes from the revision after the last one it delivered, so nothing is lost or repeated.
 */
export class WatchStream {
  private readonly parts: WatchStreamParts;
  private readonly watches = new Set<EtcdWatch>();
  private readonly byId = new Map<string, EtcdWatch>();
  /** Watches whose create request is out, in order: etcd answers creates on one stream in order. */
  private creating: EtcdWatch | null = null;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | null = null;
  private opening = false;
  private endpoint = 0;
  private reopenMs = firstReopenMs;
  private reopenTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private unanswered = 0;
  private lastTick = 0;
  private closed = false;

  constructor(parts: WatchStreamParts) {
    this.parts = parts;
  }

  /** Starts watching `prefix`; `started` on the result resolves once etcd has created the watch. */
  watch(prefix: string, onEvents: (events: WatchEvent[]) => void, options: WatchOptions): EtcdWatch {
    const watch = new EtcdWatch(this, prefix, onEvents, options);
    this.watches.add(watch);
    this.ensureOpen();
    this.createNext();
    return watch;
  }

  /** Ends every watch and the stream. */
  close(): void {
    this.closed = true;
    for (const watch of this.watches) watch.markClosed();
    this.watches.clear();
    this.drop();
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
  }

  /** @internal A watch closed by its owner. */
  remove(watch: EtcdWatch): void {
    if (!this.watches.delete(watch)) return;
    if (watch.id !== null) {
      this.byId.delete(watch.id);
      this.stream?.write({ cancel_request: { watch_id: watch.id } });
      watch.id = null;
    }
    if (this.watches.size === 0) this.drop();
  }

  /** @internal */
  relist(prefix: string): Promise<Snapshot> {
    return this.parts.relist(prefix);
  }

  /** @internal A watch that resynced watches on: created again from its new revision. */
  recreate(watch: EtcdWatch): void {
    if (this.closed || !this.watches.has(watch)) return;
    this.ensureOpen();
    this.createNext();
  }

  private ensureOpen(): void {
    if (this.closed || this.stream || this.opening || this.reopenTimer) return;
    this.opening = true;
    const endpoint = this.endpoint;
    this.parts.clients[endpoint]!.watchClient.watch().then(
      (stream) => {
        this.opening = false;
        if (this.closed || this.watches.size === 0) {
          stream.cancel();
          return;
        }
        this.stream = stream;
        stream.on('data', (res: IWatchResponse) => this.handle(stream, res));
        stream.on('error', () => this.fail(stream));
        stream.on('end', () => this.fail(stream));
        this.unanswered = 0;
        this.lastTick = Date.now();
        this.watchdog = setInterval(() => this.tick(stream), progressEveryMs);
        this.watchdog.unref();
        this.createNext();
      },
      () => {
        // As for a stream that fails: try again on the next member.
        this.opening = false;
        this.endpoint = (endpoint + 1) % this.parts.clients.length;
        this.scheduleReopen();
      },
    );
  }

  /** Sends the create request of the next watch without an id, one at a time. */
  private createNext(): void {
    const stream = this.stream;
    if (!stream || this.creating) return;
    const next = [...this.watches].find((w) => w.id === null && w.wantsCreate());
    if (!next) return;
    this.creating = next;
    stream.write({ create_request: next.createRequest() });
  }

  private handle(stream: IDuplexStream<IWatchRequest, IWatchResponse>, res: IWatchResponse): void {
    if (stream !== this.stream) return;
    this.unanswered = 0;
    if (res.created) {
      const watch = this.creating;
      this.creating = null;
      this.reopenMs = firstReopenMs;
      if (watch && this.watches.has(watch)) {
        if (res.canceled) watch.cancelled();
        else {
          watch.id = String(res.watch_id);
          this.byId.set(watch.id, watch);
          watch.created(res);
        }
      } else if (!res.canceled) {
        stream.write({ cancel_request: { watch_id: res.watch_id } }); // closed while being created
      }
      this.createNext();
      return;
    }
    // A progress answer is not for one watch (etcd sends watch_id -1); it only proves the stream alive.
    const watch = this.byId.get(String(res.watch_id));
    if (!watch) return;
    if (res.canceled) {
      this.byId.delete(watch.id!);
      watch.id = null;
      watch.cancelled();
      return;
    }
    watch.deliver(res);
  }

  private tick(stream: IDuplexStream<IWatchRequest, IWatchResponse>): void {
    if (stream !== this.stream) return;
    const now = Date.now();
    // After a stall of this process's own event loop, answers may be waiting unread: judge nothing yet.
    const selfStalled = now - this.lastTick > progressEveryMs * 2;
    this.lastTick = now;
    if (selfStalled) this.unanswered = 0;
    if (this.unanswered >= unansweredLimit) {
      this.fail(stream);
      return;
    }
    this.unanswered++;
    stream.write({ progress_request: {} });
  }

  /** Gives the stream up; every watch is created again, on the next member, from where it stopped. */
  private fail(stream: IDuplexStream<IWatchRequest, IWatchResponse>): void {
    if (stream !== this.stream) return;
    this.drop();
    this.endpoint = (this.endpoint + 1) % this.parts.clients.length;
    this.scheduleReopen();
  }

  private drop(): void {
    const stream = this.stream;
    this.stream = null;
    this.creating = null;
    this.byId.clear();
    for (const watch of this.watches) watch.id = null;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    if (stream) {
      stream.on('error', () => {}); // the cancel below surfaces as an error event
      stream.cancel();
    }
  }

  private scheduleReopen(): void {
    if (this.closed || this.reopenTimer) return;
    const delay = this.reopenMs;
    this.reopenMs = Math.min(this.reopenMs * 2, maxReopenMs);
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      if (this.watches.size > 0) this.ensureOpen();
    }, delay);
    this.reopenTimer.unref();
  }
}

/**
 * One prefix watch on the store's stream. It remembers the first revision not yet delivered, so a watch
 * created again (on another member, after a stall or a lost stream) starts there and drops repeats. When
 * etcd cancels it instead (that revision was compacted away: ErrCompacted; or for any other reason), the
 * changes in between are gone: it re-lists the prefix, resyncs the caller and watches on after that read.
 */
export class EtcdWatch implements Watcher {
  /** Resolves once etcd has created the watch: every change after that is delivered. */
  readonly started: Promise<void>;
  /** etcd's id for the watch on the current stream; null while it has none. */
  id: string | null = null;
  private readonly stream: WatchStream;
  private readonly prefix: string;
  private readonly onEvents: (events: WatchEvent[]) => void;
  private readonly options: WatchOptions;
  /** The first revision not yet delivered; 0 until etcd has told us where the watch starts. */
  private nextRevision = 0;
  private resyncing = false;
  private closed = false;
  private onStarted: () => void = () => {};

  constructor(
    stream: WatchStream,
    prefix: string,
    onEvents: (events: WatchEvent[]) => void,
    options: WatchOptions,
  ) {
    this.stream = stream;
    this.prefix = prefix;
    this.onEvents = onEvents;
    this.options = options;
    this.started = new Promise((resolve) => (this.onStarted = resolve));
  }

  close(): void {
    this.markClosed();
    this.stream.remove(this);
  }

  /** @internal */
  markClosed(): void {
    this.closed = true;
  }

  /** @internal False while a resync is re-listing: it creates the watch again when done. */
  wantsCreate(): boolean {
    return !this.closed && !this.resyncing;
  }

  /** @internal */
  createRequest(): NonNullable<IWatchRequest['create_request']> {
    const range = prefixRange(this.prefix);
    return {
      key: range.key,
      range_end: range.range_end,
      ...(this.nextRevision > 0 ? { start_revision: String(this.nextRevision) } : {}),
    };
  }

  /** @internal */
  created(res: IWatchResponse): void {
    if (this.nextRevision === 0) this.nextRevision = Number(res.header.revision) + 1;
    this.onStarted();
  }

  /** @internal etcd cancelled the watch: the stream cannot resume it. */
  cancelled(): void {
    if (this.closed) return;
    if (this.nextRevision === 0) {
      // Never created, so nothing was delivered and nothing can be missed: try again from the present.
      this.resyncing = true;
      setTimeout(() => {
        this.resyncing = false;
        this.stream.recreate(this);
      }, 500).unref();
      return;
    }
    void this.resync(firstResyncPauseMs);
  }

  /** @internal */
  deliver(res: IWatchResponse): void {
    if (this.closed) return;
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
    if (events.length === 0) return;
    this.nextRevision = events[events.length - 1]!.modRevision + 1;
    try {
      this.onEvents(events);
    } catch {
      // A subscriber's bug must not break the watch stream.
    }
  }

  /** Re-lists the prefix (retrying while the store is unreachable), hands it over, watches on after it. */
  private async resync(pauseMs: number): Promise<void> {
    this.resyncing = true;
    let snapshot: Snapshot;
    try {
      snapshot = await this.stream.relist(this.prefix);
    } catch {
      if (this.closed) return;
      const next = Math.min(pauseMs * 2, maxReopenMs);
      setTimeout(() => !this.closed && void this.resync(next), pauseMs).unref();
      return;
    }
    if (this.closed) return;
    const lastDelivered = this.nextRevision - 1;
    this.nextRevision = snapshot.revision + 1;
    deliverResync(snapshot.rows[0] ?? [], snapshot.revision, lastDelivered, this.onEvents, this.options);
    this.resyncing = false;
    this.stream.recreate(this);
  }
}

/** etcd's range for "every key starting with prefix": [prefix, prefix with its last byte below 0xff + 1). */
export function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
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
