import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { PoolState, PoolStatus } from '../control/index.ts';
import type { EbbEvent } from '../core/index.ts';
import { EventQueue, type StreamMessage } from './event-queue.ts';

/** What the stream reads: `PoolState`, or a fake in tests. */
export type PoolFeed = Pick<PoolState, 'snapshot' | 'onChange' | 'onEvent'>;

/**
 * Event names the stream adds to the SPEC §2 codes (which pass through unchanged, one SSE event each):
 * - `hello`: the pool snapshot (`GET /v1/pool`), first on every connection without `Last-Event-ID`;
 * - `pool`: a new snapshot after anything but a count changed (state, accepting, agent, drained…);
 * - `sessions`: a service's live counts, at most one per service per `sessionsIntervalMs`;
 * - `resync`: `{dropped, pool, reason}` when the client missed events: it lagged and queued messages were
 *   dropped (`lagged`), or it reconnected with a `Last-Event-ID` older than the buffer (`too-old`) or not
 *   from this API process (`unknown-id`; `dropped` is then 0: how many is not known).
 *
 * Every SPEC §2 event has an SSE `id`, `<process>-<n>`, `n` increasing within this API process; `hello`
 * and `resync` carry the id of the newest event they include. Browsers send the last one back as
 * `Last-Event-ID` when they reconnect: the stream then replays the events after it from a bounded buffer,
 * followed by a `pool` snapshot (counts and snapshots are state, not history: the newest is all a client
 * needs).
 */
export const StreamEventName = {
  hello: 'hello',
  pool: 'pool',
  sessions: 'sessions',
  resync: 'resync',
} as const;
export type StreamEventName = (typeof StreamEventName)[keyof typeof StreamEventName];

export interface SessionsUpdate {
  member: string;
  service: string;
  sessions: number;
  accepted: number;
  forced: number;
  at: number;
}

export interface EventsStreamOptions {
  /** At most one `sessions` event per service this often (default 250 ms). */
  sessionsIntervalMs?: number;
  /** A comment line this often keeps proxies and the browser from timing the stream out (default 15 s). */
  heartbeatMs?: number;
  /** Messages queued per client before it is resynced (default 256). */
  maxQueue?: number;
  /** The `retry` hint sent with `hello`: how soon a browser reconnects (default 2 s). */
  retryMs?: number;
  /** SPEC §2 events kept for clients that reconnect with `Last-Event-ID` (default 1024). */
  historySize?: number;
}

/** A recorded SPEC §2 event, as written. */
interface Recorded {
  seq: number;
  event: string;
  data: string;
}

/**
 * `GET /v1/events`: server-sent events for every client. Pool changes are turned into events once, here,
 * and fanned out; thousands of sessions per second become a few `sessions` events per service per second.
 * The stream listens to the pool only while a client is connected.
 */
export class EventsStream {
  private readonly feed: PoolFeed;
  private readonly sessionsIntervalMs: number;
  private readonly heartbeatMs: number;
  private readonly maxQueue: number;
  private readonly retryMs: number;
  private readonly historySize: number;
  private readonly queues = new Set<EventQueue>();
  private unsubscribe: (() => void) | null = null;
  /** Events are recorded from the first client on, and kept while nobody is connected, for resumes. */
  private offEvent: (() => void) | null = null;
  /** Ids of another API process, or from before a close(), are not ours to resume. */
  private epoch = newEpoch();
  private seq = 0;
  private readonly history: Recorded[] = [];
  /** Per `member/service`: the counts last seen, the update waiting for its turn, when one was last sent. */
  private readonly counts = new Map<string, string>();
  private readonly pending = new Map<string, SessionsUpdate>();
  private readonly lastSent = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private lastShape = '';

  constructor(feed: PoolFeed, options: EventsStreamOptions = {}) {
    this.feed = feed;
    this.sessionsIntervalMs = options.sessionsIntervalMs ?? 250;
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.maxQueue = options.maxQueue ?? 256;
    this.retryMs = options.retryMs ?? 2000;
    this.historySize = Math.max(1, options.historySize ?? 1024);
  }

  /** Connected clients (also a metric). */
  get clients(): number {
    return this.queues.size;
  }

  /** The route handler. */
  respond(c: Context): Response {
    c.header('X-Accel-Buffering', 'no'); // nginx in front: do not buffer the stream
    const lastEventId = c.req.header('last-event-id');
    return streamSSE(c, (stream) => this.serve(stream, lastEventId));
  }

  /** Ends every client's stream and stops listening to the pool. */
  close(): void {
    for (const queue of [...this.queues]) queue.close();
    this.offEvent?.();
    this.offEvent = null;
    // Nothing is recorded from here on: ids handed out so far can no longer be resumed.
    this.epoch = newEpoch();
    this.history.length = 0;
  }

  private async serve(stream: SSEStreamingApi, lastEventId: string | undefined): Promise<void> {
    const queue = new EventQueue(this.maxQueue, (dropped) => ({
      event: StreamEventName.resync,
      data: () => JSON.stringify({ dropped, pool: this.feed.snapshot(), reason: 'lagged' }),
    }));
    this.attach(queue);
    // Decided with the queue attached and before any await: what is replayed ends where the queue begins.
    const opening = this.opening(lastEventId);
    const heartbeat = setInterval(
      () => queue.push({ event: null, data: 'heartbeat', mergeKey: 'heartbeat' }),
      this.heartbeatMs,
    );
    heartbeat.unref();
    stream.onAbort(() => queue.close());
    try {
      let retry: number | undefined = this.retryMs;
      for (const message of opening) {
        if (stream.aborted) break;
        await write(stream, message, this.epoch, retry);
        retry = undefined;
      }
      while (!stream.aborted && !queue.closed) {
        await queue.next();
        for (const message of queue.takeAll()) {
          if (stream.aborted) break;
          await write(stream, message, this.epoch);
        }
      }
    } finally {
      clearInterval(heartbeat);
      queue.close();
      this.detach(queue);
    }
  }

  /**
   * The first messages of a connection. A new one: `hello`. A reconnect whose `Last-Event-ID` the buffer
   * still covers: the events after it, then the current pool. Otherwise a `resync`, then what is buffered.
   */
  private opening(lastEventId: string | undefined): StreamMessage[] {
    const pool = () => JSON.stringify(this.feed.snapshot());
    if (lastEventId === undefined || lastEventId.trim() === '')
      return [{ event: StreamEventName.hello, data: pool, seq: this.seq }];
    const match = /^([0-9a-f]{8})-(\d{1,15})$/.exec(lastEventId.trim());
    const after = match && match[1] === this.epoch ? Number(match[2]) : null;
    if (after === null || after > this.seq) {
      return [
        {
          event: StreamEventName.resync,
          data: () => JSON.stringify({ dropped: 0, pool: this.feed.snapshot(), reason: 'unknown-id' }),
          seq: this.seq,
        },
      ];
    }
    const replay = this.history
      .filter((r) => r.seq > after)
      .map((r): StreamMessage => ({ event: r.event, data: r.data, seq: r.seq }));
    const oldest = this.history[0]?.seq ?? this.seq + 1;
    if (after + 1 >= oldest) return [...replay, { event: StreamEventName.pool, data: pool }];
    const dropped = oldest - after - 1;
    return [
      {
        event: StreamEventName.resync,
        data: () => JSON.stringify({ dropped, pool: this.feed.snapshot(), reason: 'too-old' }),
        seq: oldest - 1,
      },
      ...replay,
    ];
  }

  private attach(queue: EventQueue): void {
    this.queues.add(queue);
    this.offEvent ??= this.feed.onEvent((event) => this.onEvent(event));
    if (this.unsubscribe) return;
    this.remember(this.feed.snapshot());
    this.unsubscribe = this.feed.onChange(() => this.onChange());
  }

  private detach(queue: EventQueue): void {
    this.queues.delete(queue);
    if (this.queues.size > 0 || !this.unsubscribe) return;
    this.unsubscribe();
    this.unsubscribe = null;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.pending.clear();
    this.lastSent.clear();
    this.counts.clear();
  }

  private broadcast(message: StreamMessage): void {
    for (const queue of this.queues) queue.push(message);
  }

  private onEvent(event: EbbEvent): void {
    const recorded: Recorded = { seq: ++this.seq, event: event.code, data: JSON.stringify(event) };
    this.history.push(recorded);
    if (this.history.length > this.historySize) this.history.shift();
    this.broadcast({ ...recorded });
  }

  private onChange(): void {
    const snapshot = this.feed.snapshot();
    const shape = shapeOf(snapshot);
    if (shape !== this.lastShape) {
      this.lastShape = shape;
      // Built when written: a client that lags gets the newest snapshot, once.
      this.broadcast({
        event: StreamEventName.pool,
        mergeKey: StreamEventName.pool,
        data: () => JSON.stringify(this.feed.snapshot()),
      });
    }
    const at = Date.now();
    for (const member of snapshot.members) {
      for (const s of member.services) {
        const key = `${member.id}/${s.id}`;
        const counts = `${s.sessions}/${s.accepted}/${s.forced}`;
        if (this.counts.get(key) === counts) continue;
        this.counts.set(key, counts);
        this.schedule(key, {
          member: member.id,
          service: s.id,
          sessions: s.sessions,
          accepted: s.accepted,
          forced: s.forced,
          at,
        });
      }
    }
  }

  /** The first change goes out at once; later ones wait for the interval and carry the newest counts. */
  private schedule(key: string, update: SessionsUpdate): void {
    this.pending.set(key, update);
    if (this.timers.has(key)) return;
    const wait = (this.lastSent.get(key) ?? -Infinity) + this.sessionsIntervalMs - Date.now();
    if (wait <= 0) return this.flush(key);
    const timer = setTimeout(() => this.flush(key), wait);
    timer.unref();
    this.timers.set(key, timer);
  }

  private flush(key: string): void {
    this.timers.delete(key);
    const update = this.pending.get(key);
    if (!update) return;
    this.pending.delete(key);
    this.lastSent.set(key, Date.now());
    this.broadcast({
      event: StreamEventName.sessions,
      mergeKey: `${StreamEventName.sessions}:${key}`,
      data: JSON.stringify(update),
    });
  }

  private remember(snapshot: PoolStatus): void {
    this.lastShape = shapeOf(snapshot);
    for (const member of snapshot.members)
      for (const s of member.services)
        this.counts.set(`${member.id}/${s.id}`, `${s.sessions}/${s.accepted}/${s.forced}`);
  }
}

function newEpoch(): string {
  return randomBytes(4).toString('hex');
}

/** Everything of a snapshot except the counts that `sessions` events carry. */
function shapeOf(snapshot: PoolStatus): string {
  return JSON.stringify(
    snapshot.members.map((m) => [
      m.id,
      m.agent,
      m.readyForOffline,
      m.services.map((s) => [
        s.id,
        s.state,
        s.startup,
        s.intent,
        s.accepting,
        s.drained,
        s.drainStartedAt,
        s.drainedAt,
        s.deadlineAt,
        s.reason,
        s.error,
      ]),
    ]),
  );
}

async function write(
  stream: SSEStreamingApi,
  message: StreamMessage,
  epoch: string,
  retry?: number,
): Promise<void> {
  const data = typeof message.data === 'function' ? message.data() : message.data;
  if (message.event === null) await stream.write(`: ${data.replace(/[\r\n]/g, ' ')}\n\n`);
  else
    await stream.writeSSE({
      event: message.event,
      data,
      ...(message.seq === undefined ? {} : { id: `${epoch}-${message.seq}` }),
      ...(retry === undefined ? {} : { retry }),
    });
}
