import type { Duplex } from 'node:stream';

interface H1Connection {
  readonly socket: Duplex;
  /** Requests whose response has not ended (more than one when the client pipelines, RFC 9112 §9.3.2). */
  inFlight: number;
  /** Requests it carried so far: a connection that carried none is new, not a kept-alive one. */
  served: number;
}

/** How long a connection closed politely (FIN) may take to close before it is reset. */
const closeGraceMs = 2000;

/**
 * The HTTP/1.1 connections open on a front end. While it refuses (SPEC §10) a connection carries no
 * request after the current ones: an idle kept-alive connection is closed at once (RFC 9112 §9.6), a
 * busy one after its last response, which carries `Connection: close`. A connection that has not carried
 * a request yet (it connected just before the pause) keeps its chance: its first response closes it.
 * Upgraded connections are tunnels, no longer kept-alive connections.
 */
export class KeepAliveConnections {
  readonly #all = new Map<Duplex, H1Connection>();
  readonly #onChange: () => void;
  #idle = 0;
  #draining = false;

  constructor(onChange: () => void) {
    this.#onChange = onChange;
  }

  get size(): number {
    return this.#all.size;
  }

  /** Open with no request in flight (a gauge, not sessions: SPEC §10). */
  get idle(): number {
    return this.#idle;
  }

  get draining(): boolean {
    return this.#draining;
  }

  add(socket: Duplex): void {
    const conn: H1Connection = { socket, inFlight: 0, served: 0 };
    this.#all.set(socket, conn);
    this.#idle++;
    socket.once('close', () => {
      if (this.#all.get(socket) !== conn) return;
      this.#all.delete(socket);
      if (conn.inFlight === 0) this.#idle--;
      this.#onChange();
    });
    this.#onChange();
  }

  requestStarted(socket: Duplex): void {
    const conn = this.#all.get(socket);
    if (!conn) return;
    if (conn.inFlight++ === 0) this.#idle--;
    conn.served++;
  }

  requestEnded(socket: Duplex): void {
    const conn = this.#all.get(socket);
    if (!conn || conn.inFlight === 0) return;
    if (--conn.inFlight === 0) {
      this.#idle++;
      if (this.#draining) close(conn);
    }
  }

  /** The connection became a tunnel (101 or CONNECT): it is counted as a session from now on. */
  detach(socket: Duplex): void {
    const conn = this.#all.get(socket);
    if (!conn) return;
    this.#all.delete(socket);
    if (conn.inFlight === 0) this.#idle--;
    this.#onChange();
  }

  /** Refusing: closes idle kept-alive connections now and busy ones after their response. Resume: stops. */
  drain(on: boolean): void {
    this.#draining = on;
    if (!on) return;
    for (const conn of this.#all.values()) if (conn.inFlight === 0 && conn.served > 0) close(conn);
  }

  /** Closes every connection now (the listener is closing and its sessions are gone). */
  destroyAll(): void {
    for (const conn of this.#all.values()) conn.socket.destroy();
  }
}

/** A FIN after what is queued, then a reset if the client does not close its side in time. */
function close(conn: H1Connection): void {
  conn.socket.end();
  setTimeout(() => conn.socket.destroy(), closeGraceMs).unref();
}
