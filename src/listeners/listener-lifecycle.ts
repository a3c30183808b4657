import { InvalidTransitionError } from '../core/index.ts';
import { ListenerState } from './listener.ts';

/** Which state may follow which (the diagram on `ListenerState`). `transition()` refuses every other move. */
const allowedMoves: Record<ListenerState, readonly ListenerState[]> = {
  closed: ['accepting', 'refusing'],
  accepting: ['refusing', 'closing'],
  refusing: ['accepting', 'closing'],
  closing: ['closed'],
};

/** What one kind of listener does at each step; the lifecycle decides when, and keeps the state. */
export interface ListenerDriver {
  /** Binds; `refusing`: turns new sessions away from the start. On failure, leaves nothing bound. */
  bind(refusing: boolean): Promise<void>;
  /** From its return on, every new session is turned away. */
  refuse(): Promise<void>;
  accept(): Promise<void>;
  /** For good: no new session from its return on; existing ones keep flowing. */
  stopListening(): Promise<void>;
  /** Ends every session now, each counted as forced; resolves with how many. */
  endSessions(): Promise<number>;
  /** Frees what is left once no session remains (sockets kept for in-session traffic, helpers). */
  release(): Promise<void>;
  sessions(): number;
}

/**
 * The state machine every listener runs, so the table lives in one place. Commands apply one at a time, in
 * order. `close()` and `destroy()` return the same stored promise for one open→closed cycle (nats.js
 * `drain()`); a destroy during a pending close ends the sessions the close is waiting for.
 */
export class ListenerLifecycle {
  readonly #name: string;
  readonly #driver: ListenerDriver;
  #state: ListenerState = ListenerState.closed;
  #ops: Promise<unknown> = Promise.resolve();
  #pendingOpens = 0;
  /** The queued step of the current close: true once it stopped listening, false if nothing was open. */
  #stopping: Promise<boolean> | null = null;
  #closing: Promise<void> | null = null;
  #closeFinished = false;
  #destroying: Promise<number> | null = null;
  #noSessionWaiters: Array<() => void> = [];
  /** `endSessions()` under way: their goodbyes (SIP BYEs) must be on the wire before the sockets go. */
  readonly #ending = new Set<Promise<number>>();

  /** `name` is the listener's description, for error messages. */
  constructor(name: string, driver: ListenerDriver) {
    this.#name = name;
    this.#driver = driver;
  }

  get state(): ListenerState {
    return this.#state;
  }

  open(refusing: boolean): Promise<void> {
    this.#pendingOpens++;
    return this.#run(async () => {
      try {
        const to = refusing ? ListenerState.refusing : ListenerState.accepting;
        if (this.#state === to) return;
        this.#require(ListenerState.closed, to);
        await this.#driver.bind(refusing);
        this.#transition(to);
      } finally {
        this.#pendingOpens--;
      }
    });
  }

  refuse(): Promise<void> {
    return this.#run(async () => {
      if (this.#state === ListenerState.refusing) return;
      this.#require(ListenerState.accepting, ListenerState.refusing);
      await this.#driver.refuse();
      this.#transition(ListenerState.refusing);
    });
  }

  accept(): Promise<void> {
    return this.#run(async () => {
      if (this.#state === ListenerState.accepting) return;
      this.#require(ListenerState.refusing, ListenerState.accepting);
      await this.#driver.accept();
      this.#transition(ListenerState.accepting);
    });
  }

  /** Not queued behind other commands: a deadline must not wait for them. */
  endSessions(): Promise<number> {
    const ending = this.#driver.endSessions();
    this.#ending.add(ending);
    const forget = () => this.#ending.delete(ending);
    ending.then(forget, forget);
    return ending;
  }

  close(): Promise<void> {
    if (this.#closing && !this.#cycleOver()) return this.#closing;
    this.#closeFinished = false;
    this.#destroying = null;
    const stopping = this.#run(async () => {
      if (this.#state === ListenerState.closed) return false;
      this.#transition(ListenerState.closing);
      await this.#driver.stopListening();
      return true;
    });
    this.#stopping = stopping;
    this.#closing = this.#finishClose(stopping);
    return this.#closing;
  }

  destroy(): Promise<number> {
    if (this.#destroying && !this.#cycleOver()) return this.#destroying;
    const closing = this.close();
    this.#destroying = this.#destroyAfter(this.#stopping!, closing);
    return this.#destroying;
  }

  /** Resolves once the pending close has stopped listening (at once when none is pending). */
  stoppedTaking(): Promise<void> {
    return (this.#stopping ?? Promise.resolve(false)).then(
      () => {},
      () => {},
    );
  }

  /** The listener's session count changed: wakes a close waiting for the last session. */
  sessionsChanged(): void {
    if (this.#noSessionWaiters.length === 0 || this.#driver.sessions() > 0) return;
    for (const wake of this.#noSessionWaiters.splice(0)) wake();
  }

  async #finishClose(stopping: Promise<boolean>): Promise<void> {
    let failure: unknown;
    const began = await stopping.catch((err: unknown) => {
      failure = err;
      return this.#state === ListenerState.closing;
    });
    if (began) {
      if (this.#driver.sessions() > 0) {
        await new Promise<void>((resolve) => this.#noSessionWaiters.push(resolve));
      }
      // Sessions count as ended at once, but their goodbyes may still be on the way out.
      await Promise.allSettled([...this.#ending]);
      // Whatever else failed, the sockets still open are let go and the listener ends closed.
      await this.#driver.release().catch((err: unknown) => (failure ??= err));
      this.#transition(ListenerState.closed);
    }
    this.#closeFinished = true;
    if (failure !== undefined) throw failure;
  }

  async #destroyAfter(stopping: Promise<boolean>, closing: Promise<void>): Promise<number> {
    let ended = 0;
    try {
      // After the listening stopped, so a session accepted while it stopped is ended too.
      if (await stopping.catch(() => this.#state === ListenerState.closing)) {
        ended = await this.endSessions();
      }
    } catch (err) {
      closing.catch(() => {}); // the error is this promise's; the close may now wait for ever
      throw err;
    }
    await closing;
    return ended;
  }

  /** The stored close belongs to a finished cycle: the listener was opened again since, or is about to be. */
  #cycleOver(): boolean {
    return this.#closeFinished && (this.#state !== ListenerState.closed || this.#pendingOpens > 0);
  }

  /** A command's move: from `from` only (open from closed; refuse and accept between the open states). */
  #require(from: ListenerState, to: ListenerState): void {
    if (this.#state !== from) this.#illegal(to);
  }

  #check(to: ListenerState): void {
    if (!allowedMoves[this.#state].includes(to)) this.#illegal(to);
  }

  #illegal(to: ListenerState): never {
    throw new InvalidTransitionError(`${this.#name}: cannot go from ${this.#state} to ${to}`, {
      from: this.#state,
      to,
    });
  }

  /** The one place the state changes. */
  #transition(to: ListenerState): void {
    this.#check(to);
    this.#state = to;
  }

  #run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#ops.then(work);
    this.#ops = next.catch(() => {});
    return next;
  }
}
