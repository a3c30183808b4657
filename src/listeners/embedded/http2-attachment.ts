import {
  constants as h2,
  type Http2SecureServer,
  type Http2Server,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { HttpSessionKind, HttpSessionTable, type HttpSession } from '../http/http-sessions.ts';
import { Http2Sessions } from '../http/http2-sessions.ts';
import {
  EmbeddedSessionKind,
  type AttachmentOptions,
  type AttachmentStats,
  type ServerAttachment,
} from './server-attachment.ts';

/**
 * A `node:http2` server (h2c, or h2 over TLS) attached to an embedded listener. Sessions are streams in
 * flight. While paused each HTTP/2 connection gets the two-step GOAWAY of RFC 9113 §6.8 and its open
 * streams finish (the http front end's `Http2Sessions`); at the deadline the streams left are cancelled.
 */
export class Http2Attachment implements ServerAttachment {
  readonly kind: string;
  readonly server: Http2Server | Http2SecureServer;
  readonly socket = { allowHalfOpen: false, noDelay: true };
  readonly #sessions: HttpSessionTable;
  readonly #http2: Http2Sessions;

  constructor(server: Http2Server | Http2SecureServer, options: AttachmentOptions) {
    this.server = server;
    this.kind = server instanceof TlsServer ? 'h2' : 'h2c';
    this.#sessions = new HttpSessionTable(options.onChange);
    // The server's own idle timeout stays in charge (`http2.createServer({ timeout })`; 0: none).
    this.#http2 = new Http2Sessions(options.onChange, (server as { timeout?: number }).timeout ?? 0);
    server.on('session', (session: ServerHttp2Session) => this.#http2.add(session));
    server.prependListener('stream', (stream: ServerHttp2Stream) => this.#onStream(stream));
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  stats(): AttachmentStats {
    return {
      byKind: { [EmbeddedSessionKind.requests]: this.#sessions.requests },
      sessions: this.#sessions.size,
      accepted: this.#sessions.accepted,
      forced: this.#sessions.forced,
      idleConnections: this.#http2.idle,
    };
  }

  accept(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  drain(on: boolean): void {
    this.#http2.drain(on);
  }

  endSessions(spreadMs: number): Promise<number> {
    return this.#sessions.endAll(spreadMs);
  }

  closeIdle(): void {
    this.#http2.destroyAll();
  }

  #onStream(stream: ServerHttp2Stream): void {
    const h2session = stream.session;
    if (!h2session) return;
    this.#http2.streamOpened(h2session);
    const session: HttpSession = {
      kind: HttpSessionKind.request,
      forced: false,
      end: () => stream.close(h2.NGHTTP2_CANCEL),
    };
    this.#sessions.open(session);
    stream.once('close', () => {
      this.#http2.streamClosed(h2session);
      this.#sessions.close(session);
    });
  }
}
