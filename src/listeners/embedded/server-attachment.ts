import type { Socket } from 'node:net';

/** How an attached server's sessions are counted, by kind (SPEC §10 for http; tcp counts connections). */
export const EmbeddedSessionKind = {
  requests: 'requests',
  websockets: 'websockets',
  connections: 'connections',
} as const;
export type EmbeddedSessionKind = (typeof EmbeddedSessionKind)[keyof typeof EmbeddedSessionKind];

/** An attachment's counts: `sessions` and `byKind` are open now, `accepted` and `forced` monotonic. */
export interface AttachmentStats {
  byKind: Partial<Record<EmbeddedSessionKind, number>>;
  sessions: number;
  accepted: number;
  forced: number;
  /** Open connections with nothing in flight (idle keep-alive, HTTP/2 without streams): not sessions. */
  idleConnections: number;
}

export interface AttachmentOptions {
  /** Counts changed; synchronous with the change (drain detection depends on it). */
  onChange: () => void;
  /** How long a polite close (WebSocket close handshake, FIN) may take before the socket is reset. */
  closeGraceMs: number;
}

/**
 * One server a Node application attached to its embedded listener (`agent.attach(server)`): the listener
 * owns the listening socket and hands each accepted connection to the server as Node's own `listen()`
 * would (`'connection'`), so pausing closes that socket and the server keeps its connections. The
 * attachment counts the server's sessions and carries out the pause and the deadline on them, with the
 * drain pieces of the http front end (SPEC §10).
 */
export interface ServerAttachment {
  /** `http`, `https`, `http2`, `net`: for the listener's description. */
  readonly kind: string;
  readonly server: object;
  /** Options of the listening socket that match what the server itself would have used. */
  readonly socket: { allowHalfOpen: boolean; noDelay: boolean };
  /** A connection accepted for the server: from here on it is the server's. */
  accept(socket: Socket): void;
  /** Pause on the connections already open (`true`), or resume (`false`). */
  drain(on: boolean): void;
  /** The deadline: every session ended now, each counted as forced; resolves with how many. */
  endSessions(spreadMs: number): Promise<number>;
  /** The listener closed with no session left: the idle connections go too. */
  closeIdle(): void;
  stats(): AttachmentStats;
  readonly sessions: number;
}

/** A socket end that resets the socket if its peer does not close its side in time. */
export function endSocket(socket: Socket, graceMs: number): void {
  socket.end();
  setTimeout(() => socket.destroy(), graceMs).unref();
}
