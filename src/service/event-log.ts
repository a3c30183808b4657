import type { Logger } from 'pino';
import type { EbbEvent } from '../core/index.ts';
import type { PoolKeys, Store } from '../store/index.ts';

/** Events kept in the store per member, for late readers (the console, `ebb audit`'s neighbours). */
const eventsKept = 500;

export interface EventLogOptions {
  member: string;
  store: Store;
  keys: PoolKeys;
  logger: Logger;
  /** Also told of every event, for in-process readers (the API's event stream). */
  onEvent?: ((event: EbbEvent) => void) | undefined;
}

/**
 * Where a member's events go (SPEC §2): the process log, in-process readers, and the store (the last
 * `eventsKept`, for readers elsewhere). A store that cannot take them is said once per outage, with a
 * code, and counted: the events themselves are still in the process log.
 */
export class EventLog {
  private readonly options: EventLogOptions;
  private readonly recentKeys: string[] = [];
  private seq = 0;
  private failing = false;
  /** Store writes or deletes of events that failed since the agent started. */
  lostWrites = 0;

  constructor(options: EventLogOptions) {
    this.options = options;
  }

  publish(event: EbbEvent): void {
    const { logger, store, keys } = this.options;
    logger.info(
      { event: event.code, member: event.member, service: event.service, ...event.data },
      event.code,
    );
    this.options.onEvent?.(event);
    const key = keys.event(event.at, event.member, ++this.seq);
    this.recentKeys.push(key);
    this.settle(store.put(key, JSON.stringify(event)));
    if (this.recentKeys.length > eventsKept) this.settle(store.delete(this.recentKeys.shift()!));
  }

  private settle(write: Promise<unknown>): void {
    write.then(
      () => {
        if (!this.failing) return;
        this.failing = false;
        this.options.logger.info({ member: this.options.member }, 'event log writes to the store again');
      },
      (err: unknown) => {
        this.lostWrites++;
        if (this.failing) return;
        this.failing = true;
        this.options.logger.warn(
          { member: this.options.member, code: 'EBB_EVENT_WRITE_FAILED', err: (err as Error).message },
          'cannot write events to the store; they are in this log only until it answers',
        );
      },
    );
  }
}
