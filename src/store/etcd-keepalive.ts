import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

/** How often the keeper looks at its lease. */
const tickMs = 100;

export interface KeepAliveParts {
  /** The lease, as etcd's decimal id. */
  id: string;
  ttlMs: number;
  /** One client per etcd member, in the order of the store's endpoints. */
  clients: readonly Etcd3[];
  /** The lease is gone: etcd answered TTL 0 (expired, or revoked elsewhere), or no renewal got through for two TTLs. */
  onLost: () => void;
}

/**
 * Renews one etcd lease so that losing one member costs no lapse (issue 16, fault 3).
 *
 * etcd expires a lease one TTL after the last keepalive its leader received. etcd3's own keepalive sends
 * every TTL/3 on one stream and gives that stream up only after a whole TTL without an answer, so a
 * member that is frozen (SIGSTOP) or cut off but keeps its connection lets the lease expire. Here a
 * keepalive goes every TTL/4; one not answered within TTL/4 (at most 1 s) is sent again at once on the
 * next member. After a frozen member the renewal thus lands at most TTL/2 after the last one, which
 * leaves half the TTL for an election or a stall of this process (see `minimumLeaseTtlMs`).
 */
export class KeepAlive {
  private readonly parts: KeepAliveParts;
  private readonly everyMs: number;
  private readonly answerMs: number;
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | null = null;
  private opening = false;
  private endpoint = 0;
  private lastRenewedAt: number;
  private sentAt: number | null = null;
  private lastSentAt = 0;
  private lastTick: number;
  /** Members given up in a row since the last renewal. */
  private failures = 0;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(parts: KeepAliveParts) {
    this.parts = parts;
    this.everyMs = Math.floor(parts.ttlMs / 4);
    this.answerMs = Math.min(1000, this.everyMs);
    this.lastRenewedAt = Date.now();
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.dropStream();
  }

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    // After a stall of this process's own event loop an answer may be waiting unread: judge nothing yet.
    const selfStalled = now - this.lastTick > tickMs * 5;
    this.lastTick = now;
    if (now - this.lastRenewedAt > this.parts.ttlMs * 2 && !selfStalled) {
      this.lost();
      return;
    }
    if (this.sentAt !== null) {
      if (selfStalled) this.sentAt = now;
      if (now - this.sentAt < this.answerMs) return;
      // Unanswered: that member is dead, frozen or cut off. Renew through the next one, now.
      this.moveOn();
    } else if (now - this.lastSentAt < this.nextDueMs()) {
      return;
    }
    this.send();
  }

  /** TTL/4 while renewals get through; after a failure the next member is tried soon (100 ms, doubling). */
  private nextDueMs(): number {
    return this.failures === 0 ? this.everyMs : Math.min(this.everyMs, 100 * 2 ** (this.failures - 1));
  }

  private send(): void {
    const stream = this.stream;
    if (!stream) {
      this.open();
      return;
    }
    this.sentAt = Date.now();
    this.lastSentAt = this.sentAt;
    stream.write({ ID: this.parts.id });
  }

  private open(): void {
    if (this.opening || this.stopped) return;
    this.opening = true;
    const endpoint = this.endpoint;
    this.parts.clients[endpoint]!.leaseClient.leaseKeepAlive().then(
      (stream) => {
        this.opening = false;
        if (this.stopped) {
          stream.cancel();
          return;
        }
        this.stream = stream;
        stream.on('data', (res: ILeaseKeepAliveResponse) => this.answered(stream, res));
        stream.on('error', () => this.failed(stream));
        stream.on('end', () => this.failed(stream));
        this.send();
      },
      () => {
        this.opening = false;
        this.failures++;
        this.endpoint = (endpoint + 1) % this.parts.clients.length;
      },
    );
  }

  private answered(
    stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>,
    res: ILeaseKeepAliveResponse,
  ): void {
    if (stream !== this.stream || this.stopped) return;
    if (Number(res.TTL) <= 0) {
      this.lost();
      return;
    }
    this.sentAt = null;
    this.failures = 0;
    this.lastRenewedAt = Date.now();
  }

  private failed(stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>): void {
    if (stream !== this.stream) return;
    this.moveOn();
  }

  /** Gives the current member up: the next keepalive goes to the next member. */
  private moveOn(): void {
    this.dropStream();
    this.sentAt = null;
    this.failures++;
    this.endpoint = (this.endpoint + 1) % this.parts.clients.length;
  }

  private dropStream(): void {
    const stream = this.stream;
    this.stream = null;
    if (!stream) return;
    stream.on('error', () => {}); // the cancel below surfaces as an error event
    stream.cancel();
  }

  private lost(): void {
    if (this.stopped) return;
    this.stop();
    this.parts.onLost();
  }
}
