import type { Server, Socket } from 'node:net';
import { HttpSessionKind, HttpSessionTable, type HttpSession } from '../http/http-sessions.ts';
import {
  EmbeddedSessionKind,
  endSocket,
  type AttachmentOptions,
  type AttachmentStats,
  type ServerAttachment,
} from './server-attachment.ts';

/**
 * A `node:net` server attached to an embedded listener: each connection is a session (as a tcp listener
 * counts them). A pause leaves them alone; at the deadline they are ended with a FIN (then a reset after
 * the grace), spread over `closeSpread` in random order, each counted as forced.
 */
export class NetAttachment implements ServerAttachment {
  readonly kind = 'tcp';
  readonly server: Server;
  readonly socket: { allowHalfOpen: boolean; noDelay: boolean };
  readonly #o: AttachmentOptions;
  /** Connections, counted as the table's long-lived kind (the one it spreads at the deadline). */
  readonly #connections: HttpSessionTable;

  constructor(server: Server, options: AttachmentOptions) {
    this.server = server;
    this.#o = options;
    const own = server as unknown as { allowHalfOpen?: boolean; noDelay?: boolean };
    this.socket = { allowHalfOpen: own.allowHalfOpen ?? false, noDelay: own.noDelay ?? false };
    this.#connections = new HttpSessionTable(options.onChange);
  }

  get sessions(): number {
    return this.#connections.size;
  }

  stats(): AttachmentStats {
    return {
      byKind: { [EmbeddedSessionKind.connections]: this.#connections.websockets },
      sessions: this.#connections.size,
      accepted: this.#connections.accepted,
      forced: this.#connections.forced,
      idleConnections: 0,
    };
  }

  accept(socket: Socket): void {
    const session: HttpSession = {
      kind: HttpSessionKind.websocket,
      forced: false,
      end: () => endSocket(socket, this.#o.closeGraceMs),
    };
    this.#connections.open(session);
    socket.once('close', () => this.#connections.close(session));
    this.server.emit('connection', socket);
  }

  drain(): void {}

  endSessions(spreadMs: number): Promise<number> {
    return this.#connections.endAll(spreadMs);
  }

  closeIdle(): void {}
}
