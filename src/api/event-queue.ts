/** One message waiting to be written to a server-sent-events client. */
export interface StreamMessage {
  /** The SSE event name; null writes the data as a comment line (a heartbeat). */
  event: string | null;
  /** Built when the message is written, so a merged or late message carries the state of that moment. */
  data: string | (() => string);
  /** While queued, a message replaces the queued one with the same key (newest value, older position). */
  mergeKey?: string;
  /**
   * The stream's sequence number (SSE `id`) of a SPEC §2 event, which a client can resume after. Only
   * events have one: they are never merged, so a client sees sequence numbers in increasing order.
   */
  seq?: number;
}

/**
 * The per-client queue of the event stream: bounded, so a client that reads slower than the pool changes
 * costs a fixed amount of memory. Messages with a `mergeKey` (session counts, pool snapshots, heartbeats)
 * replace each other. When the queue is full anyway, everything queued is dropped and replaced by one
 * resync message (built by `resync` with the number dropped so far): the client rebuilds from it.
 */
export class EventQueue {
  readonly max: number;
  private items: StreamMessage[] = [];
  private readonly resync: (dropped: number) => StreamMessage;
  private dropped = 0;
  private wake: (() => void) | null = null;
  private closedFlag = false;

  constructor(max: number, resync: (dropped: number) => StreamMessage) {
    if (max < 2) throw new RangeError('an event queue holds at least 2 messages');
    this.max = max;
    this.resync = resync;
  }

  get size(): number {
    return this.items.length;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  push(message: StreamMessage): void {
    if (this.closedFlag) return;
    if (message.mergeKey !== undefined) {
      const at = this.items.findIndex((m) => m.mergeKey === message.mergeKey);
      if (at !== -1) {
        this.items[at] = message;
        return;
      }
    }
    if (this.items.length >= this.max) this.overflow();
    this.items.push(message);
    this.notify();
  }

  /** Everything queued, oldest first; the queue is empty afterwards. */
  takeAll(): StreamMessage[] {
    const taken = this.items;
    this.items = [];
    if (taken.some((m) => m.mergeKey === resyncKey)) this.dropped = 0;
    return taken;
  }

  /** Resolves once a message is queued, or the queue is closed. */
  next(): Promise<void> {
    if (this.items.length > 0 || this.closedFlag) return Promise.resolve();
    return new Promise((resolve) => (this.wake = resolve));
  }

  close(): void {
    this.closedFlag = true;
    this.items = [];
    this.notify();
  }

  private overflow(): void {
    this.dropped += this.items.filter((m) => m.event !== null && m.mergeKey !== resyncKey).length;
    // The resync stands for every event it replaces: a client that resumes after it does not get them.
    const seqs = this.items.flatMap((m) => (m.seq === undefined ? [] : [m.seq]));
    const resync: StreamMessage = { ...this.resync(this.dropped), mergeKey: resyncKey };
    if (seqs.length > 0) resync.seq = Math.max(...seqs);
    this.items = [resync];
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

const resyncKey = 'resync';
