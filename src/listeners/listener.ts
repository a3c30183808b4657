/** Where a listener reports the life of its sessions; the service runtime counts them. */
export interface SessionSink {
  opened(): void;
  /** `forced`: the session was ended by Ebb (deadline or hard stop), not by its parties. */
  closed(forced: boolean): void;
  /** A new session could not reach the upstream; the client was turned away. */
  upstreamFailed(): void;
  /**
   * A new session turned away while refusing, where the protocol answers (SIP 503/302). A paused tcp
   * listener cannot count: the kernel refuses the connect.
   */
  refused?(): void;
}

/**
 * One front end of a service: listens, turns new sessions away while refusing, keeps existing sessions
 * flowing, and can end them all. Each protocol decides what "refuse" means (SPEC §4.2): tcp stops
 * listening so connects are refused; sip answers 503.
 */
export interface Listener {
  /** `tcp 127.0.0.11:7000 → builtin:echo`, for logs and errors. */
  readonly description: string;
  readonly sessions: number;
  /** Binds; with `refusing` true, takes no new sessions from the start. */
  open(refusing: boolean): Promise<void>;
  /** Resolves once new sessions are refused; existing ones continue. Idempotent. */
  refuse(): Promise<void>;
  /** Takes new sessions again. Idempotent. */
  accept(): Promise<void>;
  /** Ends every session now, politely where the protocol has a way; resolves with how many it ended. */
  endSessions(): Promise<number>;
  /** Stops listening for good. Sessions still open are ended (and counted as forced). Idempotent. */
  close(): Promise<void>;
}
