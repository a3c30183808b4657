import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type {
  Http2Server,
  IncomingHttpHeaders as Http2Headers,
  ServerHttp2Session,
  ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import type { EbbError } from '../../core/index.ts';
import { formatAddress } from '../../net/index.ts';
import { TlsAcceptor, type ReloadingSecureContext, type TlsCredentials } from '../../tls/index.ts';
import { clientAddressOf } from './forwarded-headers.ts';
import { clientError, HttpError, HttpErrorCode } from './http-errors.ts';
import type { HttpLimits } from './http-limits.ts';
import { HttpSessionKind, HttpSessionTable, type HttpSession } from './http-sessions.ts';
import { http1Server, http2Server } from './http-servers.ts';
import { HttpTunnel } from './http-tunnel.ts';
import { Http2Sessions } from './http2-sessions.ts';
import { sniffHttp2Preface } from './http2-preface.ts';
import { KeepAliveConnections } from './keep-alive-connections.ts';
import {
  H1ResponseSink,
  H2ResponseSink,
  RawResponseSink,
  switchedHead,
  type ResponseHeaders,
  type ResponseSink,
} from './response-sinks.ts';
import { UpstreamExchange } from './upstream-exchange.ts';
import { upstreamRequestOf, upstreamRequestOfH2, type UpstreamRequest } from './upstream-request.ts';

export interface HttpFrontEndOptions {
  upstream: { host: string; port: number };
  /** HTTPS (and h2 by ALPN) with this certificate source; null for cleartext (h2c by prior knowledge). */
  tls: ReloadingSecureContext | null;
  limits: HttpLimits;
  /** Over how long the deadline spreads the closes of tunnels (SPEC §10, `closeSpread`). */
  closeSpreadMs: number;
  /** How long a tunnel's polite close waits for the peers before resetting. */
  closeGraceMs: number;
  /** Counts changed (see `ListenerEvents.onChange`); synchronous with the change. */
  onChange: (urgent: boolean) => void;
  onError?: (err: EbbError) => void;
}

/** The front end's counts; `idleConnections` and `connections` are gauges, not sessions. */
export interface HttpFrontEndStats {
  requests: number;
  websockets: number;
  accepted: number;
  forced: number;
  upstreamFailures: number;
  /** Requests answered 400/408/431 (or 501) without reaching the upstream. */
  badRequests: number;
  /** TLS handshakes that failed or timed out. */
  tlsFailures: number;
  /** HTTP/1.1 connections with no request in flight and HTTP/2 sessions with no open stream. */
  idleConnections: number;
  /** Client connections open now that speak HTTP/1.1 or HTTP/2 (not those still in a TLS handshake). */
  connections: number;
}

const clientGone = new HttpError(HttpErrorCode.ended, 'client went away');
const cutByEbb = new HttpError(HttpErrorCode.ended, 'ended by Ebb: service stopping');

/**
 * The HTTP semantics of an http listener, without the listening socket: it takes accepted connections,
 * tells HTTP/2 from HTTP/1.1 (TLS ALPN, or the h2c preface), proxies each request to the upstream
 * through an undici pool and each Upgrade/CONNECT as a tunnel, and counts sessions (SPEC §10). `drain()`
 * is the pause behaviour on connections already open; `endSessions()` the deadline.
 */
export class HttpFrontEnd {
  readonly #o: HttpFrontEndOptions;
  readonly #proto: 'http' | 'https';
  readonly #h1: Server;
  readonly #h2: Http2Server;
  readonly #pool: Pool;
  readonly #sessions: HttpSessionTable;
  readonly #keepAlive: KeepAliveConnections;
  readonly #http2: Http2Sessions;
  /** Raw sockets not handed to an HTTP server yet (preface sniffing), or under TLS (for `destroy()`). */
  readonly #raw = new Set<Socket>();
  readonly #tls: TlsAcceptor | null;
  readonly #closing = () => this.#draining;
  readonly #hooks = { onUpstreamFailure: () => this.#upstreamFailed() };
  #draining = false;
  #upstreamFailures = 0;
  #badRequests = 0;
  #tlsFailures = 0;

  constructor(options: HttpFrontEndOptions) {
    this.#o = options;
    this.#proto = options.tls ? 'https' : 'http';
    const limits = options.limits;
    const changed = () => options.onChange(false);
    this.#sessions = new HttpSessionTable(changed);
    this.#keepAlive = new KeepAliveConnections(changed);
    this.#http2 = new Http2Sessions(changed, limits.keepAliveTimeoutMs);

    this.#h1 = http1Server(limits);
    this.#h1.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#h1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onTunnel(req, socket, head),
    );
    this.#h1.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onTunnel(req, socket, head),
    );
    this.#h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.#onClientError(err, socket),
    );

    this.#h2 = http2Server(limits);
    this.#h2.on('session', (session: ServerHttp2Session) => this.#http2.add(session));
    this.#h2.on('stream', (stream: ServerHttp2Stream, headers: Http2Headers) =>
      this.#onStream(stream, headers),
    );

    this.#tls = options.tls
      ? new TlsAcceptor({
          credentials: options.tls.credentials,
          alpnProtocols: ['h2', 'http/1.1'],
          handshakeTimeoutMs: limits.tlsHandshakeTimeoutMs,
          onSecure: (secure) => {
            if (secure.alpnProtocol === 'h2') this.#h2.emit('connection', secure);
            else this.#toHttp1(secure);
          },
          onFailure: () => {
            this.#tlsFailures++;
            options.onChange(false);
          },
        })
      : null;

    this.#pool = new Pool(`http://${formatAddress(options.upstream.host, options.upstream.port)}`, {
      connections: null,
      pipelining: 1,
      headersTimeout: limits.upstreamHeadersTimeoutMs,
      bodyTimeout: 0,
      connect: { timeout: limits.upstreamConnectTimeoutMs },
    });
  }

  /** Sessions open now (requests in flight plus tunnels). */
  get sessions(): number {
    return this.#sessions.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  stats(): HttpFrontEndStats {
    return {
      requests: this.#sessions.requests,
      websockets: this.#sessions.websockets,
      accepted: this.#sessions.accepted,
      forced: this.#sessions.forced,
      upstreamFailures: this.#upstreamFailures,
      badRequests: this.#badRequests,
      tlsFailures: this.#tlsFailures,
      idleConnections: this.#keepAlive.idle + this.#http2.idle,
      connections: this.#keepAlive.size + this.#http2.size,
    };
  }

  /** An accepted TCP connection: from here on it is this front end's. */
  accept(socket: Socket): void {
    this.#raw.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.#raw.delete(socket));
    if (this.#tls) {
      this.#tls.accept(socket);
      return;
    }
    sniffHttp2Preface(socket, this.#o.limits.headersTimeoutMs, (http2) => {
      this.#raw.delete(socket);
      if (http2) {
        this.#h2.emit('connection', socket);
      } else {
        this.#toHttp1(socket);
        socket.resume();
      }
    });
  }

  /** The certificate new TLS connections get from now on (live ones keep theirs). */
  useTls(credentials: TlsCredentials): void {
    this.#tls?.use(credentials);
  }

  /**
   * Pause on the connections already open (SPEC §10): HTTP/1.1 responses carry `Connection: close` and
   * idle kept-alive connections close; HTTP/2 sessions get the two-step GOAWAY. `false` undoes what
   * can be undone (a GOAWAY cannot).
   */
  drain(on: boolean): void {
    this.#draining = on;
    this.#keepAlive.drain(on);
    this.#http2.drain(on);
  }

  /** The deadline: every session ended now, requests cut, tunnels closed over `closeSpreadMs`; each forced. */
  endSessions(): Promise<number> {
    return this.#sessions.endAll(this.#o.closeSpreadMs);
  }

  /** Closes every connection left and the upstream pool (the listener is closed and has no sessions). */
  async destroy(): Promise<void> {
    this.#keepAlive.destroyAll();
    this.#http2.destroyAll();
    for (const socket of this.#raw) socket.destroy();
    this.#h1.close();
    this.#h2.close();
    await this.#pool.destroy();
  }

  #toHttp1(socket: Duplex): void {
    this.#keepAlive.add(socket);
    this.#h1.emit('connection', socket);
  }

  #upstreamFailed(): void {
    this.#upstreamFailures++;
    this.#o.onChange(false);
  }

  #badRequest(): void {
    this.#badRequests++;
    this.#o.onChange(false);
  }

  #dispatch(request: UpstreamRequest, exchange: UpstreamExchange): void {
    this.#pool.dispatch(
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body,
        upgrade: request.upgrade,
      },
      exchange,
    );
  }

  /** Ends one request now: a 503 if its response has not begun, else the response is cut. */
  #cut(sink: ResponseSink, exchange: UpstreamExchange): void {
    exchange.cancel(cutByEbb);
    sink.fail(cutByEbb);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.#keepAlive.requestStarted(socket);
    const sink = new H1ResponseSink(res, this.#closing);
    const request = upstreamRequestOf(req, this.#proto, this.#o.limits.maxHeaderCount);
    if (request instanceof HttpError) {
      res.once('close', () => this.#keepAlive.requestEnded(socket));
      this.#badRequest();
      sink.fail(request);
      return;
    }
    const exchange = new UpstreamExchange(sink, this.#hooks);
    const session: HttpSession = {
      kind: HttpSessionKind.request,
      forced: false,
      end: () => this.#cut(sink, exchange),
    };
    this.#sessions.open(session);
    res.once('close', () => {
      if (!res.writableFinished) exchange.cancel(clientGone);
      this.#keepAlive.requestEnded(socket);
      this.#sessions.close(session);
    });
    this.#dispatch(request, exchange);
  }

  /** An `Upgrade` request (WebSocket or another protocol, RFC 9110 §7.8) or CONNECT (§9.3.6). */
  #onTunnel(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Until the upstream answers, what the client sends (and its FIN) waits in the socket's buffer: the
    // socket may be flowing (the preface sniffer resumed it), and bytes read now would be lost.
    socket.pause();
    this.#keepAlive.detach(socket);
    socket.on('error', () => socket.destroy());
    const sink = new RawResponseSink(socket);
    const connect = req.method === 'CONNECT';
    const request = upstreamRequestOf(req, this.#proto, this.#o.limits.maxHeaderCount);
    if (request instanceof HttpError || (!connect && request.upgrade === null)) {
      this.#badRequest();
      sink.fail(
        request instanceof HttpError ? request : new HttpError(HttpErrorCode.badRequest, 'bad upgrade'),
      );
      return;
    }
    const websocket = !connect && request.upgrade!.toLowerCase() === 'websocket';
    let tunnel: HttpTunnel | null = null;
    const exchange = new UpstreamExchange(sink, {
      onUpstreamFailure: this.#hooks.onUpstreamFailure,
      onUpgrade: (status: number, headers: ResponseHeaders, upstream: Duplex) => {
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        socket.write(switchedHead(status, connect, headers));
        tunnel = new HttpTunnel({
          client: socket,
          upstream,
          clientHead: head,
          websocket,
          graceMs: this.#o.closeGraceMs,
          onClosed: () => {},
        });
      },
    });
    const session: HttpSession = {
      kind: HttpSessionKind.websocket,
      forced: false,
      end: () => {
        if (tunnel) void tunnel.end();
        else this.#cut(sink, exchange);
      },
    };
    this.#sessions.open(session);
    socket.once('close', () => {
      exchange.cancel(clientGone);
      this.#sessions.close(session);
    });
    this.#dispatch(connect ? { ...request, path: req.url ?? '', upgrade: null } : request, exchange);
  }

  #onStream(stream: ServerHttp2Stream, headers: Http2Headers): void {
    const h2session = stream.session;
    if (!h2session) return;
    this.#http2.streamOpened(h2session);
    stream.on('error', () => {});
    const sink = new H2ResponseSink(stream);
    let session: HttpSession | null = null;
    stream.once('close', () => {
      this.#http2.streamClosed(h2session);
      if (session) this.#sessions.close(session);
    });
    if (headers[':method'] === 'CONNECT') {
      // RFC 9113 §8.5 tunnels and RFC 8441 WebSockets over HTTP/2 are not carried (yet).
      this.#badRequest();
      sink.fail(new HttpError(HttpErrorCode.notImplemented, 'CONNECT over HTTP/2 is not supported'));
      return;
    }
    const address = clientAddressOf(h2session.socket?.remoteAddress);
    const request = upstreamRequestOfH2(headers, stream, stream.endAfterHeaders, address, this.#proto);
    if (request instanceof HttpError) {
      this.#badRequest();
      sink.fail(request);
      return;
    }
    const exchange = new UpstreamExchange(sink, this.#hooks);
    const opened: HttpSession = {
      kind: HttpSessionKind.request,
      forced: false,
      end: () => this.#cut(sink, exchange),
    };
    session = opened;
    this.#sessions.open(opened);
    stream.once('close', () => {
      if (!stream.writableFinished) exchange.cancel(clientGone);
    });
    this.#dispatch(request, exchange);
  }

  /**
   * A request Node's parser refused (llhttp: syntax, framing, CL with TE, a bad chunk), or one that timed
   * out: 400/408/431 and the connection closed; nothing of it is forwarded, and a request whose head was
   * already on its way upstream is aborted there (its body never completes).
   */
  #onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    this.#badRequest();
    // Mid-body: the response of that request may have begun; then nothing can be said in between.
    const current = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (current?.headersSent) {
      socket.destroy();
      return;
    }
    new RawResponseSink(socket).fail(clientError(err));
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}
