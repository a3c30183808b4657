import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import { HttpSessionKind, HttpSessionTable, type HttpSession } from '../http/http-sessions.ts';
import { KeepAliveConnections } from '../http/keep-alive-connections.ts';
import { WebSocketCloseCode } from '../http/websocket-close-frame.ts';
import {
  EmbeddedSessionKind,
  type AttachmentOptions,
  type AttachmentStats,
  type ServerAttachment,
} from './server-attachment.ts';

/** What Ebb needs of a `ws` WebSocket (structural, so the library's types do not depend on `ws`'s). */
export interface WebSocketLike {
  close(code?: number, reason?: string): void;
  terminate(): void;
  once(event: 'close', listener: () => void): unknown;
}

/** The reason sent with 1012 at a deadline, as the http front end's tunnels send it. */
const serviceRestartReason = 'service restart: reconnect';

/**
 * A `node:http` or `node:https` server (HTTP/1.1) attached to an embedded listener, with any `ws`
 * server on it. Sessions are requests in flight and WebSockets; an idle keep-alive connection is not a
 * session (SPEC §10). While paused, every response carries `Connection: close` and its connection closes
 * after it, idle kept-alive connections close at once (the http front end's `KeepAliveConnections`);
 * WebSockets go on. At the deadline requests are cut and WebSockets get 1012, spread over `closeSpread`
 * in random order (its `HttpSessionTable`).
 */
export class Http1Attachment implements ServerAttachment {
  readonly kind: string;
  readonly server: HttpServer | HttpsServer;
  readonly socket = { allowHalfOpen: true, noDelay: true };
  readonly #o: AttachmentOptions;
  readonly #secure: boolean;
  readonly #sessions: HttpSessionTable;
  readonly #keepAlive: KeepAliveConnections;
  /** Responses not finished yet: those whose head is still to be written get `Connection: close` at a pause. */
  readonly #responses = new Set<ServerResponse>();
  #draining = false;

  constructor(server: HttpServer | HttpsServer, options: AttachmentOptions) {
    this.server = server;
    this.#o = options;
    this.#secure = server instanceof TlsServer;
    this.kind = this.#secure ? 'https' : 'http';
    this.#sessions = new HttpSessionTable(options.onChange);
    this.#keepAlive = new KeepAliveConnections(options.onChange);
    // Under TLS the HTTP connection is the TLS socket, once its handshake is done.
    if (this.#secure) server.on('secureConnection', (tls: TLSSocket) => this.#keepAlive.add(tls));
    // First, so the count is right before the application's handler runs (and whatever it throws).
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) =>
      this.#onRequest(req, res),
    );
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  stats(): AttachmentStats {
    return {
      byKind: {
        [EmbeddedSessionKind.requests]: this.#sessions.requests,
        [EmbeddedSessionKind.websockets]: this.#sessions.websockets,
      },
      sessions: this.#sessions.size,
      accepted: this.#sessions.accepted,
      forced: this.#sessions.forced,
      idleConnections: this.#keepAlive.idle,
    };
  }

  accept(socket: Socket): void {
    if (!this.#secure) this.#keepAlive.add(socket);
    this.server.emit('connection', socket);
  }

  drain(on: boolean): void {
    this.#draining = on;
    // RFC 9112 §9.6: the last response on the connection says so.
    if (on) for (const res of this.#responses) if (!res.headersSent) res.shouldKeepAlive = false;
    this.#keepAlive.drain(on);
  }

  endSessions(spreadMs: number): Promise<number> {
    return this.#sessions.endAll(spreadMs);
  }

  closeIdle(): void {
    this.#keepAlive.destroyAll();
  }

  /** A WebSocket the `ws` server accepted on one of this server's connections: a session until it closes. */
  addWebSocket(ws: WebSocketLike, req: IncomingMessage): void {
    // The connection is a tunnel now, no longer a kept-alive connection a pause would close.
    this.#keepAlive.detach(req.socket);
    let timer: NodeJS.Timeout | null = null;
    const session: HttpSession = {
      kind: HttpSessionKind.websocket,
      forced: false,
      end: () => {
        // SPEC §10: 1012 (Service Restart) towards the client, never a bare 1001.
        ws.close(WebSocketCloseCode.serviceRestart, serviceRestartReason);
        timer = setTimeout(() => ws.terminate(), this.#o.closeGraceMs);
        timer.unref();
      },
    };
    this.#sessions.open(session);
    ws.once('close', () => {
      if (timer) clearTimeout(timer);
      this.#sessions.close(session);
    });
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.#keepAlive.requestStarted(socket);
    if (this.#draining) res.shouldKeepAlive = false;
    this.#responses.add(res);
    const session: HttpSession = {
      kind: HttpSessionKind.request,
      forced: false,
      // The deadline cuts requests still in flight (SPEC §10).
      end: () => res.destroy(),
    };
    this.#sessions.open(session);
    res.on('close', () => {
      this.#responses.delete(res);
      this.#keepAlive.requestEnded(socket);
      this.#sessions.close(session);
    });
  }
}
