import { connect, type Socket } from 'node:net';
import { LifecycleListener } from './lifecycle-listener.ts';
import type { TcpListenerConfig } from '../config/index.ts';
import { UpstreamConnectError, type EbbError } from '../core/index.ts';
import { ErrorThrottle, formatAddress, TcpListeningSocket } from '../net/index.ts';
import type { ListenerBuild } from './listener-kinds.ts';
import { ListenerLifecycle } from './listener-lifecycle.ts';
import type { ListenerStats } from './listener-stats.ts';
import type { Listener } from './listener.ts';

export interface TcpListenerOptions {
  host: string;
  port: number;
  /** `host:port` of the real server, or `builtin:echo`. */
  upstream: { host: string; port: number } | 'echo';
  /** See `ListenerEvents`. */
  onChange?: (urgent: boolean) => void;
  onError?: (err: EbbError) => void;
  /** How long a forced close waits for FIN before resetting. */
  forceGraceMs?: number;
  /** SO_REUSEPORT: worker threads each listen on the same port (see `ThreadedListener`). */
  reusePort?: boolean;
}

const upstreamConnectTimeoutMs = 5000;

interface TcpSession {
  client: Socket;
  upstream: Socket | null;
  forced: boolean;
}

/**
 * A TCP front end: a connection is a session. Refusing closes the listening socket, so new connects get
 * "connection refused" and clients of DNS load balancing move to the next address at once (SPEC §4.2);
 * proxied connections keep flowing both ways, half-close included, until either side closes.
 */
export class TcpListener extends LifecycleListener {
  readonly description: string;
  readonly #o: TcpListenerOptions;
  protected readonly life: ListenerLifecycle;
  readonly #live = new Set<TcpSession>();
  #socket: TcpListeningSocket | null = null;
  #accepted = 0;
  #forced = 0;
  #upstreamFailures = 0;
  /** Accept errors of listening sockets already closed (each `accept()` binds a new one). */
  #pastAcceptErrors = 0;
  readonly #upstreamErrors = new ErrorThrottle<UpstreamConnectError>((err, suppressed) =>
    this.#o.onError?.(
      suppressed === 0
        ? err
        : new UpstreamConnectError(`${err.message} (${suppressed} more since the last)`, err.cause),
    ),
  );

  constructor(options: TcpListenerOptions) {
    super();
    this.#o = options;
    const up =
      options.upstream === 'echo'
        ? 'builtin:echo'
        : formatAddress(options.upstream.host, options.upstream.port);
    this.description = `tcp ${formatAddress(options.host, options.port)} → ${up}`;
    this.life = new ListenerLifecycle(this.description, {
      bind: (refusing) => (refusing ? Promise.resolve() : this.#listen()),
      refuse: () => this.#unlisten(),
      accept: () => this.#listen(),
      stopListening: () => this.#unlisten(),
      endSessions: () => this.#endSessions(),
      release: () => Promise.resolve(),
      sessions: () => this.#live.size,
    });
  }

  /** Whether a listening socket is bound (accepting, or a moment longer while it refuses or closes). */
  get listening(): boolean {
    return this.#socket !== null;
  }

  stats(): ListenerStats {
    const connections = this.#live.size;
    return {
      sessions: connections,
      byKind: { connections },
      accepted: this.#accepted,
      refused: 0, // the kernel refuses connects while no socket listens: nothing to count here
      forced: this.#forced,
      upstreamFailures: this.#upstreamFailures,
      acceptErrors: this.#pastAcceptErrors + (this.#socket?.acceptErrors ?? 0),
      idleConnections: 0,
    };
  }

  async #listen(): Promise<void> {
    this.#socket = await TcpListeningSocket.listen({
      host: this.#o.host,
      port: this.#o.port,
      label: this.description,
      allowHalfOpen: true,
      noDelay: true,
      reusePort: this.#o.reusePort,
      onConnection: (client) => this.#onConnection(client),
      onAcceptError: (err) => {
        this.#o.onError?.(err);
        this.#o.onChange?.(true);
      },
    });
  }

  /** Resolves once the kernel refuses new connects; accepted connections go on. */
  async #unlisten(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    await socket.close();
    this.#pastAcceptErrors += socket.acceptErrors;
    this.#socket = null;
  }

  async #endSessions(): Promise<number> {
    const sessions = [...this.#live];
    const grace = this.#o.forceGraceMs ?? 1000;
    await Promise.all(
      sessions.map(
        (session) =>
          new Promise<void>((resolve) => {
            session.forced = true;
            session.client.once('close', () => resolve());
            // TCP's polite "go elsewhere" is a close (SPEC §2); reset if the peer does not finish in time.
            session.client.end();
            session.upstream?.end();
            setTimeout(() => {
              session.client.destroy();
              session.upstream?.destroy();
            }, grace).unref();
            if (session.client.destroyed) resolve();
          }),
      ),
    );
    return sessions.length;
  }

  #changed(): void {
    this.life.sessionsChanged();
    this.#o.onChange?.(false);
  }

  #onConnection(client: Socket): void {
    const session: TcpSession = { client, upstream: null, forced: false };
    this.#live.add(session);
    this.#accepted++;
    client.on('error', () => client.destroy());
    client.once('close', () => {
      session.upstream?.destroy();
      if (!this.#live.delete(session)) return;
      if (session.forced) this.#forced++;
      this.#changed();
    });

    const target = this.#o.upstream;
    if (target === 'echo') {
      forward(client, client);
      this.#changed();
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    session.upstream = upstream;
    // Both directions from the start, not from 'connect': a client may send data and its FIN before the
    // upstream has connected (a health check, `nc -z`, a client giving up, Ebb's own event loop held up).
    // Its 'end' is emitted once and would be lost, the upstream never closed, and the session counted
    // for ever. A connecting socket queues writes and end() and sends them on connect; a write that
    // returns false pauses the client until the upstream drains, so nothing piles up without bound.
    forward(client, upstream);
    forward(upstream, client);
    let connected = false;
    // An upstream that drops packets silently would hold the client for the kernel's minutes-long timeout.
    upstream.setTimeout(upstreamConnectTimeoutMs, () => {
      if (!connected) upstream.destroy(new Error('upstream connect timeout'));
    });
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
    });
    upstream.on('error', (err) => {
      if (!connected) {
        this.#upstreamFailures++;
        this.#upstreamErrors.push(
          new UpstreamConnectError(`${this.description}: cannot reach the upstream: ${err.message}`, err),
        );
        this.#o.onChange?.(false);
      }
      upstream.destroy();
      client.destroy();
    });
    // The upstream closed without error (e.g. after its own FIN and ours): nothing more can flow.
    upstream.once('close', () => {
      if (!connected) client.destroy();
    });
    this.#changed();
  }
}

/** `tcp` in a pool config: a proxy in front of `upstream`, or the built-in echo server. */
export function createTcpListener(
  address: string,
  config: TcpListenerConfig,
  build: ListenerBuild,
): Listener {
  const { target } = config;
  const upstream = target.kind === 'builtin' ? 'echo' : { host: target.host, port: target.port };
  return new TcpListener({
    host: address,
    port: config.port,
    upstream,
    ...(build.reusePort ? { reusePort: true } : {}),
    ...build.events,
  });
}

/**
 * Copies one direction of a session with backpressure, and passes a half-close (FIN) on. Lighter than
 * `stream.pipe()`: an idle proxied session costs ~6 KiB instead of ~10 (bench/memory-per-session.ts).
 */
function forward(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => to.end());
}
