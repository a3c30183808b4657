import { Server as HttpServer, type IncomingMessage } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import { Server as HttpsServer } from 'node:https';
import { Server as NetServer, type Socket } from 'node:net';
import type { EmbeddedListenerConfig } from '../../config/index.ts';
import { EbbError, ExitCode } from '../../core/index.ts';
import { formatAddress, TcpListeningSocket } from '../../net/index.ts';
import { LifecycleListener } from '../lifecycle-listener.ts';
import { ListenerLifecycle } from '../listener-lifecycle.ts';
import type { ListenerStats } from '../listener-stats.ts';
import { Http1Attachment, type WebSocketLike } from './http1-attachment.ts';
import { Http2Attachment } from './http2-attachment.ts';
import { NetAttachment } from './net-attachment.ts';
import type { ServerAttachment } from './server-attachment.ts';

const defaultCloseGraceMs = 2000;

export interface EmbeddedListenerOptions {
  host: string;
  port: number;
  protocol: EmbeddedListenerConfig['protocol'];
  /** Over how long the deadline spreads the closes of WebSockets and connections (SPEC §10). */
  closeSpreadMs: number;
  closeGraceMs?: number;
  onChange?: (urgent: boolean) => void;
  onError?: (err: EbbError) => void;
}

/** What Ebb needs of a `ws` WebSocketServer (structural: the library's types do not need `ws`'s). */
export interface WebSocketServerLike {
  on(event: 'connection', listener: (ws: WebSocketLike, req: IncomingMessage) => void): unknown;
  options?: { port?: number | null | undefined };
}

/** A server that `attach()` takes: `node:http`, `https`, `http2` (h2c or secure) or `net`. */
export type AttachableServer = HttpServer | HttpsServer | Http2Server | Http2SecureServer | NetServer;

/**
 * A `mode: embedded` listener (SPEC §12): the front end of a Node server that embeds Ebb. It listens on
 * the member's address and the configured port for the server attached to it, and hands it each
 * connection; refusing closes that listening socket (new connections refused, as tcp), while the server
 * keeps the connections it has and drains them as an http listener does (SPEC §10). Until a server is
 * attached nothing listens; a server attached while the service is paused accepts nothing until it
 * resumes. The application never calls `listen()` on an attached server: the listener does.
 */
export class EmbeddedListener extends LifecycleListener {
  readonly description: string;
  readonly #o: EmbeddedListenerOptions;
  protected readonly life: ListenerLifecycle;
  #attachment: ServerAttachment | null = null;
  #socket: TcpListeningSocket | null = null;
  /** The lifecycle's wish: listen (accepting) or not (closed, refusing, closing). */
  #wanted = false;
  /** Listening and closing, one after the other. */
  #sync: Promise<void> = Promise.resolve();
  #toldListening = false;
  #pastAcceptErrors = 0;

  constructor(options: EmbeddedListenerOptions) {
    super();
    this.#o = options;
    this.description = `${options.protocol} ${formatAddress(options.host, options.port)} (embedded)`;
    this.life = new ListenerLifecycle(this.description, {
      bind: (refusing) => this.#want(!refusing),
      refuse: () => this.#want(false),
      accept: () => this.#want(true),
      stopListening: () => this.#want(false),
      endSessions: () => this.#attachment?.endSessions(this.#o.closeSpreadMs) ?? Promise.resolve(0),
      release: async () => this.#attachment?.closeIdle(),
      sessions: () => this.#attachment?.sessions ?? 0,
    });
  }

  /** The port of the config (where the pool's DNS sends clients). */
  get configuredPort(): number {
    return this.#o.port;
  }

  get protocol(): EmbeddedListenerConfig['protocol'] {
    return this.#o.protocol;
  }

  get attached(): boolean {
    return this.#attachment !== null;
  }

  /** Where it listens now (the OS's port when configured as 0), or null while it does not. */
  get address(): { host: string; port: number } | null {
    return this.#socket ? { host: this.#o.host, port: this.#socket.port } : null;
  }

  /** The attachment of an http server (for `attachWebSocketServer`), if that is what is attached. */
  get http1(): Http1Attachment | null {
    return this.#attachment instanceof Http1Attachment ? this.#attachment : null;
  }

  stats(): ListenerStats {
    const now = this.#attachment?.stats();
    const byKind: Record<string, number> = {};
    for (const [kind, n] of Object.entries(now?.byKind ?? {})) byKind[kind] = n;
    return {
      sessions: now?.sessions ?? 0,
      byKind,
      accepted: now?.accepted ?? 0,
      refused: 0, // the kernel refuses connects while no socket listens: nothing to count here
      forced: now?.forced ?? 0,
      upstreamFailures: 0,
      idleConnections: now?.idleConnections ?? 0,
      acceptErrors: this.#pastAcceptErrors + (this.#socket?.acceptErrors ?? 0),
    };
  }

  /**
   * Takes the server this listener listens for; resolves once it listens (at once while paused). Throws
   * EBB_ALREADY_ATTACHED for a second server, EBB_NOT_ATTACHABLE for what is not a Node server of the
   * listener's protocol.
   */
  attach(server: AttachableServer): Promise<void> {
    if (this.#attachment)
      throw new EbbError('EBB_ALREADY_ATTACHED', `${this.description}: a server is attached already`, {
        exitCode: ExitCode.usage,
      });
    const options = {
      onChange: () => this.#changed(),
      closeGraceMs: this.#o.closeGraceMs ?? defaultCloseGraceMs,
    };
    const attachment = attachmentFor(server, this.#o.protocol, options, this.description);
    guardListen(server, this.description);
    this.#attachment = attachment;
    attachment.drain(!this.#wanted && this.state !== 'closed');
    return this.#resync();
  }

  /**
   * Counts the WebSockets of a `ws` server on the attached HTTP server (created with `{ server }` or
   * `{ noServer: true }`; one with its own `port` listens where no pause can reach: EBB_NOT_ATTACHABLE).
   */
  attachWebSocketServer(wss: WebSocketServerLike): void {
    const http1 = this.http1;
    if (!http1)
      throw new EbbError('EBB_NOT_ATTACHABLE', `${this.description}: attach its HTTP server first`, {
        exitCode: ExitCode.usage,
      });
    if (typeof wss.options?.port === 'number')
      throw new EbbError(
        'EBB_NOT_ATTACHABLE',
        `${this.description}: a ws server with its own port cannot be paused; create it with { server } or { noServer: true }`,
        { exitCode: ExitCode.usage },
      );
    wss.on('connection', (ws, req) => http1.addWebSocket(ws, req));
  }

  #want(listen: boolean): Promise<void> {
    this.#wanted = listen;
    this.#attachment?.drain(!listen);
    return this.#resync();
  }

  /** Brings the listening socket in line with the wish, after whatever is under way. */
  #resync(): Promise<void> {
    const next = this.#sync.then(async () => {
      const listen = this.#wanted && this.#attachment !== null;
      if (listen && !this.#socket) await this.#listen(this.#attachment!);
      else if (!listen && this.#socket) await this.#unlisten();
    });
    this.#sync = next.catch(() => {});
    return next;
  }

  async #listen(attachment: ServerAttachment): Promise<void> {
    this.#socket = await TcpListeningSocket.listen({
      host: this.#o.host,
      port: this.#o.port,
      label: this.description,
      ...attachment.socket,
      onConnection: (socket: Socket) => attachment.accept(socket),
      onAcceptError: (err) => {
        this.#o.onError?.(err);
        this.#o.onChange?.(true);
      },
    });
    if (!this.#toldListening) {
      // Node's HTTP server starts its header and request timers on 'listening' (a slowloris is cut).
      this.#toldListening = true;
      (attachment.server as NetServer).emit('listening');
    }
  }

  async #unlisten(): Promise<void> {
    const socket = this.#socket!;
    // Accepts what the kernel queued already, then closes: from here on connects are refused.
    await socket.close();
    this.#pastAcceptErrors += socket.acceptErrors;
    this.#socket = null;
  }

  #changed(): void {
    this.life.sessionsChanged();
    this.#o.onChange?.(false);
  }
}

function attachmentFor(
  server: AttachableServer,
  protocol: EmbeddedListenerConfig['protocol'],
  options: { onChange: () => void; closeGraceMs: number },
  description: string,
): ServerAttachment {
  const notAttachable = (why: string) =>
    new EbbError('EBB_NOT_ATTACHABLE', `${description}: cannot attach this server: ${why}`, {
      exitCode: ExitCode.usage,
    });
  if (server instanceof HttpServer || server instanceof HttpsServer) {
    if (protocol !== 'http') throw notAttachable('an HTTP server needs a protocol http listener');
    return new Http1Attachment(server, options);
  }
  // Node exports no class for HTTP/2 servers; they are the net (or tls) servers with HTTP/2 settings.
  if (server instanceof NetServer && 'updateSettings' in server) {
    if (protocol !== 'http') throw notAttachable('an HTTP/2 server needs a protocol http listener');
    return new Http2Attachment(server as Http2Server | Http2SecureServer, options);
  }
  if (server instanceof NetServer) {
    if (protocol !== 'tcp') throw notAttachable('a net server needs a protocol tcp listener');
    return new NetAttachment(server, options);
  }
  throw notAttachable('not a node:http, https, http2 or net server');
}

/** The listener listens for an attached server: its own `listen()` would bypass the pool's pause. */
function guardListen(server: AttachableServer, description: string): void {
  if (server.listening)
    throw new EbbError(
      'EBB_ALREADY_LISTENING',
      `${description}: attach the server before it listens; the agent listens for it`,
      { exitCode: ExitCode.usage },
    );
  (server as { listen: unknown }).listen = () => {
    throw new EbbError(
      'EBB_EMBEDDED_LISTEN',
      `${description}: this server is attached to Ebb, which listens for it; do not call listen()`,
      { exitCode: ExitCode.usage },
    );
  };
}
