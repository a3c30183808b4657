/**
 * Long-lived echo sessions that stay busy: each sends a line about every `everyMs` (± 25 %, so they do not
 * move in step) and waits for its echo. A session is "cut" when the other side closes it, resets it, or
 * an echo does not come back within 3 s, before this side closed it. Bounded in time.
 */
import type { Socket } from 'node:net';
import { openSocket, roundTrip } from '../../test/harness/tcp-sessions.ts';
import { closedWithin } from './connect-loop.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface HeldCounts {
  sessions: number;
  /** Round trips that came back right. */
  exchanges: number;
  cut: number;
  examples: string[];
}

export class HeldSessions {
  readonly counts: HeldCounts;
  #closing = false;
  readonly #sockets: Socket[];
  readonly #loops: Promise<void>[];

  private constructor(sockets: Socket[], everyMs: number, maxMs: number) {
    this.#sockets = sockets;
    this.counts = { sessions: sockets.length, exchanges: 0, cut: 0, examples: [] };
    const until = performance.now() + maxMs;
    this.#loops = sockets.map((s, i) => this.#exchange(s, i, everyMs, until));
  }

  /** Opens `count` sessions (each does one round trip first) and starts their exchanges. */
  static async open(
    host: string,
    port: number,
    options: { count: number; everyMs: number; maxMs: number },
  ): Promise<HeldSessions> {
    const sockets: Socket[] = [];
    for (let i = 0; i < options.count; i++) {
      const s = await openSocket(host, port);
      if ((await roundTrip(s, `open ${i}\n`)) !== `open ${i}\n`) throw new Error(`session ${i}: bad echo`);
      sockets.push(s);
    }
    return new HeldSessions(sockets, options.everyMs, options.maxMs);
  }

  /** Ends the exchanges, then closes every session from this side; resolves with the counts. */
  async close(): Promise<HeldCounts> {
    this.#closing = true;
    await Promise.all(this.#loops);
    await Promise.all(this.#sockets.map((s) => closedWithin(s, 5000)));
    return this.counts;
  }

  #cut(i: number, why: string): void {
    this.counts.cut++;
    if (this.counts.examples.length < 5) this.counts.examples.push(`session ${i}: ${why}`);
  }

  async #exchange(socket: Socket, i: number, everyMs: number, until: number): Promise<void> {
    let closedByPeer = false;
    socket.once('close', () => (closedByPeer = !this.#closing));
    for (let n = 0; !this.#closing && performance.now() < until; n++) {
      await sleep(everyMs * (0.75 + Math.random() * 0.5));
      if (this.#closing) return;
      if (closedByPeer || socket.destroyed) return this.#cut(i, 'closed by the other side');
      try {
        const line = `s${i}-${n}\n`;
        const echoed = await roundTrip(socket, line, 3000);
        if (echoed !== line) return this.#cut(i, `echoed ${JSON.stringify(echoed)}`);
        this.counts.exchanges++;
      } catch (err) {
        return this.#cut(i, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
    }
  }
}
