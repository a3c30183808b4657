import type { Logger } from 'pino';
import type { ServiceStatus } from '../core/index.ts';
import type { PoolKeys, Store } from '../store/index.ts';

/**
 * Session-count changes are written at most this often; state changes (and a drain completing) are
 * written at once. A shared etcd cluster carries every member's writes, so counts go slower there.
 */
const coalesceMs = { sqlite: 50, etcd: 500 } as const;
/** How often a status that could not be written is tried again. */
const retryMs = 1000;

export interface StatusWriterOptions {
  member: string;
  store: Store;
  keys: PoolKeys;
  logger: Logger;
  /** The status of a service as it is now; read when the write runs, not when it was asked for. */
  read: (service: string) => ServiceStatus;
  /** False while this agent does not hold the member: writes wait (and are retried) until it does. */
  mayWrite?: () => boolean;
}

/**
 * Writes each service's status to the store: urgent changes at once, count changes coalesced, one write
 * per service in flight and at most one queued behind it (a slow store must not grow a queue), failed
 * writes retried until the store takes them.
 */
export class StatusWriter {
  private readonly options: StatusWriterOptions;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, Promise<void>>();
  private readonly failed = new Set<string>();
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(options: StatusWriterOptions) {
    this.options = options;
  }

  start(): void {
    this.retryTimer ??= setInterval(() => {
      for (const service of [...this.failed]) void this.write(service);
    }, retryMs);
    this.retryTimer.unref();
  }

  /** Something a status reader would see changed; `urgent` for state changes and a completed drain. */
  changed(service: string, urgent: boolean): void {
    if (this.stopped) return;
    if (urgent) {
      void this.write(service);
      return;
    }
    if (this.timers.has(service)) return;
    const timer = setTimeout(() => {
      this.timers.delete(service);
      void this.write(service);
    }, coalesceMs[this.options.store.kind]);
    this.timers.set(service, timer);
  }

  /** Writes the service's status as it is when the write runs, after any write already under way. */
  write(service: string): Promise<void> {
    // A write that is queued but not started will send the status as it is then: no need for another.
    const queued = this.queued.get(service);
    if (queued) return queued;
    const previous = this.inFlight.get(service) ?? Promise.resolve();
    const next = previous.then(async () => {
      this.queued.delete(service);
      const { store, keys, member, logger } = this.options;
      if (this.options.mayWrite && !this.options.mayWrite()) {
        this.failed.add(service);
        return;
      }
      try {
        await store.put(keys.status(member, service), JSON.stringify(this.options.read(service)));
        if (this.failed.delete(service)) logger.info({ member, service }, 'status written again');
      } catch (err) {
        // Say so once per outage, not every second.
        if (!this.failed.has(service)) {
          logger.warn(
            { member, service, code: 'EBB_STATUS_WRITE_FAILED', err: (err as Error).message },
            'status write failed; retrying',
          );
        }
        this.failed.add(service);
      }
    });
    this.inFlight.set(service, next);
    this.queued.set(service, next);
    return next;
  }

  /** Stops timers; resolves once the writes under way have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearInterval(this.retryTimer);
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([...this.inFlight.values()]);
  }
}
