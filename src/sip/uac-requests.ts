import type { SipPeer, SipSender } from './sip-peer.ts';
import { T1_MS, T2_MS, TIMER_64T1_MS } from './transaction-table.ts';

interface Pending {
  bytes: Buffer;
  to: SipPeer;
  interval: number;
  /** Over TCP (the listener's, or a UDP listener's connection): no retransmissions (§17.1.2.2). */
  reliable: boolean;
  giveUpAt: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (status: number) => void;
}

/**
 * Requests an element sends in its own name (the proxy's BYE/CANCEL at a deadline, the demo UAS's
 * NOTIFY): a non-INVITE client transaction reduced to retransmission (RFC 3261 §17.1.2.2, Timer E from T1
 * doubling up to T2, on UDP only) until a final response, Timer F (64*T1) or `close()`.
 */
export class UacRequests {
  readonly #sender: SipSender;
  readonly #reliable: boolean;
  readonly #pending = new Map<string, Pending>();

  constructor(sender: SipSender, reliable: boolean) {
    this.#sender = sender;
    this.#reliable = reliable;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Sends; resolves with the final status, or 0 when none came (timeout, send failure, close). */
  send(branch: string, method: string, bytes: Buffer, to: SipPeer): Promise<number> {
    const key = `${branch}|${method}`;
    this.#pending.get(key)?.resolve(0);
    return new Promise<number>((resolve) => {
      const p: Pending = {
        bytes,
        to,
        interval: T1_MS,
        reliable: this.#reliable || to.connection !== undefined || to.transport === 'tcp',
        giveUpAt: Date.now() + TIMER_64T1_MS,
        timer: undefined,
        resolve: (status) => {
          if (p.timer) clearTimeout(p.timer);
          if (this.#pending.get(key) === p) this.#pending.delete(key);
          resolve(status);
        },
      };
      this.#pending.set(key, p);
      this.#sender.send(to, bytes, () => p.resolve(0));
      this.#arm(p);
    });
  }

  /** A response to one of our requests; true when it was ours. Provisional ones stop nothing but Timer E. */
  onResponse(branch: string, method: string, status: number): boolean {
    const p = this.#pending.get(`${branch}|${method}`);
    if (!p) return false;
    if (status >= 200) p.resolve(status);
    else p.interval = T2_MS; // §17.1.2.2: after a provisional, retransmit every T2
    return true;
  }

  close(): void {
    for (const p of [...this.#pending.values()]) p.resolve(0);
  }

  #arm(p: Pending): void {
    const wait = p.reliable ? p.giveUpAt - Date.now() : Math.min(p.interval, p.giveUpAt - Date.now());
    p.timer = setTimeout(
      () => {
        if (Date.now() >= p.giveUpAt) return p.resolve(0);
        this.#sender.send(p.to, p.bytes);
        p.interval = Math.min(p.interval * 2, T2_MS);
        this.#arm(p);
      },
      Math.max(0, wait),
    );
    p.timer.unref();
  }
}
