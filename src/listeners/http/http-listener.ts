import type { Socket } from 'node:net';
import { LifecycleListener } from '../lifecycle-listener.ts';
import type { HttpListenerConfig } from '../../config/index.ts';
import type { EbbError } from '../../core/index.ts';
import { formatAddress, TcpListeningSocket } from '../../net/index.ts';
import { ReloadingSecureContext, type TlsCredentials, type TlsFiles } from '../../tls/index.ts';
import type { ListenerBuild } from '../listener-kinds.ts';
import { ListenerLifecycle } from '../listener-lifecycle.ts';
import type { ListenerStats } from '../listener-stats.ts';
import type { Listener } from '../listener.ts';
import { BuiltinWeb } from './builtin-web.ts';
import { HttpFrontEnd, type HttpFrontEndStats } from './http-front-end.ts';
import { defaultHttpLimits, type HttpLimits } from './http-limits.ts';
import { HttpSessionKind } from './http-sessions.ts';

/** SPEC §10: the deadline spreads WebSocket closes over this long unless `closeSpread` says otherwise. */
export const HTTP_DEFAULT_CLOSE_SPREAD_MS = 2000;
const defaultCloseGraceMs = 2000;

export interface HttpListenerOptions {
  host: string;
  port: number;
  /** `host:port` of the web server fronted, or the built-in demo app. */
  upstream: { host: string; port: number } | 'builtin';
  /** The member's id, shown by `builtin:web`. */
  member?: string;
  /** HTTPS, WSS and h2 by ALPN with these files, re-read on change and SIGHUP (SPEC §11). */
  tls?: TlsFiles;
  /** Over how long the deadline spreads WebSocket closes (default 2 s). */
  closeSpreadMs?: number;
  /** How long a WebSocket's close handshake may take at the deadline before the sockets are reset. */
  closeGraceMs?: number;
  limits?: Partial<HttpLimits>;
  /** See `ListenerEvents`. */
  onChange?: (urgent: boolean) => void;
  onError?: (err: EbbError) => void;
  /** A new certificate is in use (for logs). */
  onTlsReload?: (credentials: TlsCredentials) => void;
  /** SO_REUSEPORT: worker threads each listen on the same port (see `ThreadedListener`). */
  reusePort?: boolean;
}

/** `stats()` of an http listener: the common fields plus gauges and counters of its own. */
export interface HttpListenerStats extends ListenerStats {
  byKind: { requests: number; websockets: number };
  /** Open client connections with nothing in flight (idle keep-alive, HTTP/2 without streams): not sessions. */
  idleConnections: number;
  /** Open client connections, busy or idle. */
  connections: number;
  /** Requests answered 400/408/431/501 by Ebb, never forwarded. */
  badRequests: number;
  tlsFailures: number;
  /** Times a changed certificate was taken into use. */
  tlsReloads: number;
}

type Totals = Pick<
  HttpFrontEndStats,
  'accepted' | 'forced' | 'upstreamFailures' | 'badRequests' | 'tlsFailures'
>;

/**
 * An HTTP front end (SPEC §10): a reverse proxy for HTTP/1.1, WebSocket and other upgrades, CONNECT, and
 * HTTP/2 (h2c by prior knowledge; h2 by ALPN with TLS) in front of one upstream. Refusing closes the
 * listening socket, as tcp does, so new connections are refused; on connections already open every
 * response then carries `Connection: close`, idle kept-alive ones close at once, HTTP/2 sessions get
 * the two-step GOAWAY, and WebSockets go on until a side closes them. Sessions are requests in flight
 * and open tunnels.
 */
export class HttpListener extends LifecycleListener {
  readonly description: string;
  readonly #o: HttpListenerOptions;
  readonly #limits: HttpLimits;
  protected readonly life: ListenerLifecycle;
  #socket: TcpListeningSocket | null = null;
  #front: HttpFrontEnd | null = null;
  #web: BuiltinWeb | null = null;
  #tls: ReloadingSecureContext | null = null;
  /** Totals of front ends already released (the counters are monotonic over the listener's life). */
  #past: Totals = { accepted: 0, forced: 0, upstreamFailures: 0, badRequests: 0, tlsFailures: 0 };
  #pastAcceptErrors = 0;
  #pastTlsReloads = 0;

  constructor(options: HttpListenerOptions) {
    super();
    this.#o = options;
    this.#limits = { ...defaultHttpLimits, ...options.limits };
    const up =
      options.upstream === 'builtin'
        ? 'builtin:web'
        : formatAddress(options.upstream.host, options.upstream.port);
    this.description = `${options.tls ? 'https' : 'http'} ${formatAddress(options.host, options.port)} → ${up}`;
    this.life = new ListenerLifecycle(this.description, {
      bind: (refusing) => this.#bind(refusing),
      refuse: () => this.#refuse(),
      accept: () => this.#accept(),
      stopListening: () => this.#refuse(),
      endSessions: () => this.#front?.endSessions() ?? Promise.resolve(0),
      release: () => this.#release(),
      sessions: () => this.#front?.sessions ?? 0,
    });
  }

  /** The port bound (the OS's choice when configured as 0), while a listening socket is open. */
  get port(): number {
    return this.#socket?.port ?? this.#o.port;
  }

  /** The address of the upstream in use (the built-in app's once open). */
  get upstream(): { host: string; port: number } | undefined {
    return this.#o.upstream === 'builtin' ? this.#web?.address : this.#o.upstream;
  }

  /** The certificate source, while open with TLS (tests and status read what is in use). */
  get tls(): ReloadingSecureContext | null {
    return this.#tls;
  }

  stats(): HttpListenerStats {
    const now = this.#front?.stats();
    const requests = now?.requests ?? 0;
    const websockets = now?.websockets ?? 0;
    return {
      sessions: requests + websockets,
      byKind: { [HttpSessionKind.request]: requests, [HttpSessionKind.websocket]: websockets },
      accepted: this.#past.accepted + (now?.accepted ?? 0),
      refused: 0, // the kernel refuses connects while no socket listens: nothing to count here
      forced: this.#past.forced + (now?.forced ?? 0),
      upstreamFailures: this.#past.upstreamFailures + (now?.upstreamFailures ?? 0),
      acceptErrors: this.#pastAcceptErrors + (this.#socket?.acceptErrors ?? 0),
      idleConnections: now?.idleConnections ?? 0,
      connections: now?.connections ?? 0,
      badRequests: this.#past.badRequests + (now?.badRequests ?? 0),
      tlsFailures: this.#past.tlsFailures + (now?.tlsFailures ?? 0),
      tlsReloads: this.#pastTlsReloads + (this.#tls?.reloads ?? 0),
    };
  }

  async #bind(refusing: boolean): Promise<void> {
    try {
      let upstream = this.#o.upstream;
      if (upstream === 'builtin') {
        this.#web = new BuiltinWeb(this.#o.member ?? 'ebb', this.#o.host);
        upstream = await this.#web.start();
      }
      if (this.#o.tls) {
        this.#tls = await ReloadingSecureContext.open({
          files: this.#o.tls,
          onReload: (credentials) => {
            this.#front?.useTls(credentials);
            this.#o.onTlsReload?.(credentials);
          },
          ...(this.#o.onError ? { onError: this.#o.onError } : {}),
        });
      }
      this.#front = new HttpFrontEnd({
        upstream,
        tls: this.#tls,
        limits: this.#limits,
        closeSpreadMs: this.#o.closeSpreadMs ?? HTTP_DEFAULT_CLOSE_SPREAD_MS,
        closeGraceMs: this.#o.closeGraceMs ?? defaultCloseGraceMs,
        onChange: (urgent) => this.#changed(urgent),
        ...(this.#o.onError ? { onError: this.#o.onError } : {}),
      });
      this.#front.drain(refusing);
      if (!refusing) await this.#listen();
    } catch (err) {
      await this.#release();
      throw err;
    }
  }

  async #listen(): Promise<void> {
    const front = this.#front!;
    this.#socket = await TcpListeningSocket.listen({
      host: this.#o.host,
      port: this.#o.port,
      label: this.description,
      // As Node's own HTTP server: a client's FIN is answered once its responses are written.
      allowHalfOpen: true,
      noDelay: true,
      reusePort: this.#o.reusePort,
      onConnection: (socket: Socket) => front.accept(socket),
      onAcceptError: (err) => {
        this.#o.onError?.(err);
        this.#o.onChange?.(true);
      },
    });
  }

  /** Resolves once the kernel refuses new connects; then the open connections are drained (SPEC §10). */
  async #refuse(): Promise<void> {
    const socket = this.#socket;
    if (socket) {
      await socket.close();
      this.#pastAcceptErrors += socket.acceptErrors;
      this.#socket = null;
    }
    this.#front?.drain(true);
  }

  async #accept(): Promise<void> {
    await this.#listen();
    this.#front?.drain(false);
  }

  async #release(): Promise<void> {
    const front = this.#front;
    if (front) {
      const s = front.stats();
      this.#past = {
        accepted: this.#past.accepted + s.accepted,
        forced: this.#past.forced + s.forced,
        upstreamFailures: this.#past.upstreamFailures + s.upstreamFailures,
        badRequests: this.#past.badRequests + s.badRequests,
        tlsFailures: this.#past.tlsFailures + s.tlsFailures,
      };
      this.#front = null;
      await front.destroy();
    }
    if (this.#socket) await this.#refuse();
    if (this.#tls) {
      this.#pastTlsReloads += this.#tls.reloads;
      this.#tls.close();
      this.#tls = null;
    }
    const web = this.#web;
    this.#web = null;
    await web?.close();
  }

  #changed(urgent: boolean): void {
    this.life.sessionsChanged();
    this.#o.onChange?.(urgent);
  }
}

/** `http` in a pool config: a reverse proxy in front of `upstream`, or the built-in demo web app (SPEC §10, §11). */
export function createHttpListener(
  address: string,
  config: HttpListenerConfig,
  build: ListenerBuild,
): Listener {
  const target = config.target;
  return new HttpListener({
    host: address,
    port: config.port,
    upstream: target.kind === 'builtin' ? 'builtin' : { host: target.host, port: target.port },
    member: build.member,
    ...(config.tls ? { tls: config.tls } : {}),
    closeSpreadMs: config.closeSpreadMs,
    ...(build.reusePort ? { reusePort: true } : {}),
    ...build.events,
  });
}
