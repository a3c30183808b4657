import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { EventCode, type EbbEvent } from '../core/index.ts';
import type { PoolKeys, Store } from '../store/index.ts';

/** Events kept in the store per member, for late readers (the console, `ebb audit`'s neighbours). */
const eventsKept = 500;

/**
 * The audit record of sessions Ebb ended (SPEC §2, §8: forced sessions appear in the audit log). Same
 * shape and key as the controller's `AuditRecord`, which this folder may not import; `by` names the
 * member's agent, since no operator's command ended them at that moment.
 */
export interface ForcedAuditRecord {
  id: string;
  at: number;
  by: `agent:${string}`;
  action: 'force';
  member: string;
  service: string | null;
  reason: string;
  force: false;
  result: 'ok';
  detail: string;
}

const forcedBecause: Record<string, string> = {
  deadline: 'at the deadline',
  stop: 'by a hard stop',
  shutdown: 'as the agent shut down',
};

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
 * code, and counted: the events themselves are still in the process log. A `session.forced` event is
 * also an audit record (`forcedAuditRecord`).
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
    if (event.code === EventCode.sessionForced) this.audit(forcedAuditRecord(event));
  }

  /** Audit records are kept, not rotated; one the store does not take is logged whole, as a warning. */
  private audit(record: ForcedAuditRecord): void {
    const { store, keys, logger } = this.options;
    store.put(keys.audit(record.at, record.id), JSON.stringify(record)).catch((err: unknown) => {
      logger.warn(
        { member: record.member, code: 'EBB_AUDIT_WRITE_FAILED', err: (err as Error).message, record },
        'cannot write the audit record of forced sessions to the store',
      );
    });
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

/** `2 session(s) ended at the deadline`, from a `session.forced` event (`count`, `why`). */
export function forcedAuditRecord(event: EbbEvent): ForcedAuditRecord {
  const count = typeof event.data?.['count'] === 'number' ? event.data['count'] : 0;
  const why = String(event.data?.['why'] ?? '');
  return {
    id: randomUUID(),
    at: event.at,
    by: `agent:${event.member}`,
    action: 'force',
    member: event.member,
    service: event.service ?? null,
    reason: '',
    force: false,
    result: 'ok',
    detail: `${count} session(s) ended ${forcedBecause[why] ?? `(${why || 'no reason given'})`}`,
  };
}
