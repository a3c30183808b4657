/** The kinds of HTTP session (SPEC §10), as `stats().byKind` names them. */
export const HttpSessionKind = {
  /** A request from its head to the end of its response (HTTP/1.1 request or HTTP/2 stream). */
  request: 'requests',
  /** An open tunnel: an upgraded WebSocket, another `Upgrade` protocol or a CONNECT tunnel. */
  websocket: 'websockets',
} as const;
export type HttpSessionKind = (typeof HttpSessionKind)[keyof typeof HttpSessionKind];

/** One session as the table sees it; the front end that made it knows how to end it. */
export interface HttpSession {
  readonly kind: HttpSessionKind;
  /** Ended by Ebb, not by its parties. */
  forced: boolean;
  /** Ends it now: a request is cut, a tunnel closed politely. */
  end(): void;
  /** Set while `endAll()` waits for this session to go. */
  onGone?: (() => void) | undefined;
}

/**
 * The sessions open now and the totals, counted exactly once each (a session is added at its start and
 * removed at its end, whatever ended it). `onChange` runs synchronously with every change.
 */
export class HttpSessionTable {
  readonly #live = new Set<HttpSession>();
  /** Sessions `endAll()` has taken on (some wait for their turn in the spread). */
  readonly #ending = new Set<HttpSession>();
  readonly #onChange: () => void;
  #requests = 0;
  #websockets = 0;
  #accepted = 0;
  #forced = 0;

  constructor(onChange: () => void) {
    this.#onChange = onChange;
  }

  get size(): number {
    return this.#live.size;
  }

  get requests(): number {
    return this.#requests;
  }

  get websockets(): number {
    return this.#websockets;
  }

  get accepted(): number {
    return this.#accepted;
  }

  get forced(): number {
    return this.#forced;
  }

  open(session: HttpSession): void {
    this.#live.add(session);
    this.#accepted++;
    if (session.kind === HttpSessionKind.request) this.#requests++;
    else this.#websockets++;
    this.#onChange();
  }

  /** A session that closed by itself before its turn came is not forced. */
  #force(session: HttpSession): void {
    if (!this.#live.has(session)) return;
    session.forced = true;
    session.end();
  }

  /** Idempotent: a session closes once however many of its sockets report it. */
  close(session: HttpSession): void {
    if (!this.#live.delete(session)) return;
    this.#ending.delete(session);
    if (session.kind === HttpSessionKind.request) this.#requests--;
    else this.#websockets--;
    if (session.forced) this.#forced++;
    session.onGone?.();
    this.#onChange();
  }

  /**
   * Ends every session now, each counted as forced (SPEC §10 deadline): requests are cut at once;
   * tunnels are closed one by one in random order, evenly over `spreadMs`, so their clients do not all
   * reconnect in the same instant. Resolves with how many it ended once they are all gone; a session
   * already being ended is waited for but not counted again.
   */
  endAll(spreadMs: number): Promise<number> {
    const requests: HttpSession[] = [];
    const tunnels: HttpSession[] = [];
    for (const s of this.#live) {
      if (this.#ending.has(s)) continue;
      this.#ending.add(s);
      (s.kind === HttpSessionKind.request ? requests : tunnels).push(s);
    }
    const waiting = [...this.#live];
    const gone = new Promise<void>((resolve) => {
      let left = waiting.length;
      if (left === 0) resolve();
      for (const s of waiting) {
        const before = s.onGone;
        s.onGone = () => {
          before?.();
          if (--left === 0) resolve();
        };
      }
    });
    for (const s of requests) this.#force(s);
    shuffle(tunnels);
    tunnels.forEach((s, i) => {
      const at = tunnels.length > 1 ? (spreadMs * i) / tunnels.length : 0;
      if (at === 0) this.#force(s);
      else setTimeout(() => this.#force(s), at);
    });
    return gone.then(() => requests.length + tunnels.length);
  }
}

/** Fisher–Yates, in place. */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
