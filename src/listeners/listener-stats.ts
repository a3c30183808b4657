/**
 * A listener's counts as a plain snapshot (undici `PoolStats`). `sessions` and `byKind` are what is open
 * now; every other field is monotonic over the listener's life (across close and open again).
 */
export interface ListenerStats {
  /** Sessions open now (SPEC §1): the sum of `byKind`. */
  sessions: number;
  /** The same by kind: tcp `connections`, sip `dialogs` (call attempts and dialogs), later http ones. */
  byKind: Record<string, number>;
  accepted: number;
  /** New sessions turned away while refusing where the protocol answers (SIP 503/302); tcp: the kernel. */
  refused: number;
  /** Sessions ended by Ebb (deadline, hard stop, destroy) rather than by their parties. */
  forced: number;
  /** New sessions that could not reach the upstream; the client was turned away. */
  upstreamFailures: number;
  /**
   * Open client connections with nothing in flight (http idle keep-alive): not sessions (SPEC §10), but a
   * gauge an operator watches. Always 0 for tcp and sip, where a connection is the session.
   */
  idleConnections: number;
  /**
   * sip over TCP/TLS/WebSocket: flows clients opened (their registrations ride on them, SPEC §14); a
   * gauge. With `drainFlows` they also count as sessions of kind `flows`.
   */
  flows?: number;
  /** Failed accepts that reached us (see `TcpListenOptions.onAcceptError`: libuv absorbs a plain EMFILE). */
  acceptErrors: number;
}

export function emptyStats(): ListenerStats {
  return {
    sessions: 0,
    byKind: {},
    accepted: 0,
    refused: 0,
    forced: 0,
    upstreamFailures: 0,
    acceptErrors: 0,
    idleConnections: 0,
  };
}

/** The stats of several listeners as one (a service's). */
export function sumStats(all: Iterable<ListenerStats>): ListenerStats {
  const sum = emptyStats();
  for (const s of all) {
    sum.sessions += s.sessions;
    sum.accepted += s.accepted;
    sum.refused += s.refused;
    sum.forced += s.forced;
    sum.upstreamFailures += s.upstreamFailures;
    sum.acceptErrors += s.acceptErrors;
    sum.idleConnections += s.idleConnections;
    if (s.flows !== undefined) sum.flows = (sum.flows ?? 0) + s.flows;
    for (const [kind, n] of Object.entries(s.byKind)) sum.byKind[kind] = (sum.byKind[kind] ?? 0) + n;
  }
  return sum;
}
