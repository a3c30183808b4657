/**
 * Brand-new TCP connections at one address, one at a time and paced to at most `rate` per second, with no
 * retry: each connects, gets one line echoed and closes. What a client that just arrives sees while the
 * process behind the port is replaced (SPEC §13: none refused). Bounded in count and in time.
 */
import type { Socket } from 'node:net';
import { closeSocket, openSocket, roundTrip } from '../../test/harness/tcp-sessions.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Closes `socket` and waits for the other side's FIN, at most `ms`; false (and destroyed) if it never came. */
export async function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const closed = await Promise.race([closeSocket(socket).then(() => true as const), late]);
  clearTimeout(timer);
  if (!closed) socket.destroy();
  return closed;
}

export interface ConnectLoopCounts {
  attempted: number;
  ok: number;
  /** The connect was refused (ECONNREFUSED): no process listened, or its queue was closed. */
  refused: number;
  /** Reset, timed out, or the echo came back wrong: accepted and then lost. */
  lost: number;
  /** The first few failures, for the notes. */
  examples: string[];
}

export class ConnectLoop {
  readonly counts: ConnectLoopCounts = { attempted: 0, ok: 0, refused: 0, lost: 0, examples: [] };
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(host: string, port: number, options: { rate: number; maxCount: number; maxMs: number }) {
    this.#done = this.#run(host, port, options);
  }

  /** Stops after the connect under way; resolves with the counts. */
  async stop(): Promise<ConnectLoopCounts> {
    this.#stopped = true;
    await this.#done;
    return this.counts;
  }

  async #run(
    host: string,
    port: number,
    o: { rate: number; maxCount: number; maxMs: number },
  ): Promise<void> {
    const started = performance.now();
    const interval = 1000 / o.rate;
    for (let i = 0; i < o.maxCount && !this.#stopped && performance.now() - started < o.maxMs; i++) {
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      this.counts.attempted++;
      try {
        const socket = await openSocket(host, port, 2000);
        try {
          const echoed = await roundTrip(socket, `n${i}\n`, 3000);
          if (echoed !== `n${i}\n`) throw new Error(`echoed ${JSON.stringify(echoed)}`);
        } catch (err) {
          // A lost connection may never answer a FIN: do not wait for it.
          socket.destroy();
          throw err;
        }
        if (!(await closedWithin(socket, 3000))) throw new Error('no FIN back within 3 s');
        this.counts.ok++;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ECONNREFUSED') this.counts.refused++;
        else this.counts.lost++;
        if (this.counts.examples.length < 5)
          this.counts.examples.push(`#${i}: ${code ?? (err as Error).message}`);
      }
    }
  }
}
