/** What the drainer needs from a listener: its clients' flows, which of them are busy, how to close one. */
export interface SipFlows {
  /** Connection ids of the flows clients opened to this listener (TCP, TLS, WebSocket). */
  ids(): Iterable<number>;
  /** Flows that carry a call, a subscription or a transaction still waiting for its final answer. */
  busy(): Set<number>;
  /** Closes one flow politely (FIN, or a WebSocket close), after what it has to send. */
  close(id: number): void;
}

export interface SipFlowDrainerOptions {
  flows: SipFlows;
  /** Closes are spread over this long, in random order (`closeSpread`). */
  spreadMs: number;
  /** How often flows are looked at while draining. */
  tickMs?: number;
  random?: () => number;
  now?: () => number;
}

/**
 * SPEC §14: while a sip service is paused, the flows its clients registered over are closed once they
 * carry nothing — each at a random moment within `closeSpread` of the pause (or of its arrival), so RFC
 * 5626 clients re-register elsewhere in a trickle, not all at once; a flow that carries a call is closed
 * after its last call ends. `stop()` (resume) cancels the closes not yet made.
 */
export class SipFlowDrainer {
  readonly #o: SipFlowDrainerOptions;
  readonly #due = new Map<number, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(options: SipFlowDrainerOptions) {
    this.#o = options;
  }

  get draining(): boolean {
    return this.#timer !== null;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.#o.tickMs ?? 200);
    this.#timer.unref();
    this.tick();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#due.clear();
  }

  /** Closes the flows whose moment has come and that carry nothing; callable by tests. */
  tick(now = (this.#o.now ?? Date.now)()): void {
    const random = this.#o.random ?? Math.random;
    const seen = new Set<number>();
    let busy: Set<number> | undefined;
    for (const id of this.#o.flows.ids()) {
      seen.add(id);
      let due = this.#due.get(id);
      if (due === undefined) {
        due = now + Math.floor(random() * this.#o.spreadMs);
        this.#due.set(id, due);
      }
      if (due > now) continue;
      busy ??= this.#o.flows.busy();
      if (busy.has(id)) continue;
      this.#due.delete(id);
      this.#o.flows.close(id);
    }
    for (const id of this.#due.keys()) if (!seen.has(id)) this.#due.delete(id);
  }
}
