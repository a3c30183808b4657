import { createServer, connect, type Server, type Socket } from 'node:net';
import { ListenError } from '../core/index.ts';
import type { Listener, SessionSink } from './listener.ts';

export interface TcpListenerOptions {
  host: string;
  port: number;
  /** `host:port` of the real server, or `builtin:echo`. */
  upstream: { host: string; port: number } | 'echo';
  sink: SessionSink;
  /** How long a forced close waits for FIN before resetting. */
  forceGraceMs?: number;
}

const upstreamConnectTimeoutMs = 5000;
/** Upper bound on the event-loop turns `refuse()` spends accepting queued connections. */
const maxAcceptTurns = 100;

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
export class TcpListener implements Listener {
  readonly description: string;
  private readonly options: TcpListenerOptions;
  private server: Server | null = null;
  private readonly live = new Set<TcpSession>();
  private acceptedTotal = 0;

  constructor(options: TcpListenerOptions) {
    this.options = options;
    const up =
      options.upstream === 'echo' ? 'builtin:echo' : `${options.upstream.host}:${options.upstream.port}`;
    this.description = `tcp ${formatAddress(options.host, options.port)} → ${up}`;
  }

  get sessions(): number {
    return this.live.size;
  }

  get listening(): boolean {
    return this.server !== null;
  }

  async open(refusing: boolean): Promise<void> {
    if (!refusing) await this.accept();
  }

  async accept(): Promise<void> {
    if (this.server) return;
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) =>
      this.onConnection(client),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ListenError(`${this.description}: ${err.message}`, err)));
      server.listen({ host: this.options.host, port: this.options.port, backlog: 4096 }, () => resolve());
    });
    server.on('error', () => {}); // after listen, errors are per-connection and handled there
    this.server = server;
  }

  async refuse(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    // Connections whose handshake the kernel already completed sit in the accept queue; closing the
    // listening socket now would reset them. Let the event loop accept them first (libuv takes about one
    // per turn): they become sessions like any other. Stop when two turns accept nothing new.
    for (let turn = 0; turn < maxAcceptTurns; turn++) {
      const before = this.acceptedTotal;
      await new Promise<void>((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.acceptedTotal === before) break;
    }
    // libuv closes the listening descriptor synchronously inside close(): when this returns, the kernel
    // refuses new connects. The callback would wait for every existing connection; we do not.
    server.close();
  }

  async endSessions(): Promise<number> {
    const sessions = [...this.live];
    const grace = this.options.forceGraceMs ?? 1000;
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

  async close(): Promise<void> {
    await this.refuse();
    if (this.live.size > 0) await this.endSessions();
  }

  private onConnection(client: Socket): void {
    this.acceptedTotal++;
    const session: TcpSession = { client, upstream: null, forced: false };
    this.live.add(session);
    this.options.sink.opened();
    client.on('error', () => client.destroy());
    client.once('close', () => {
      session.upstream?.destroy();
      if (this.live.delete(session)) this.options.sink.closed(session.forced);
    });

    const target = this.options.upstream;
    if (target === 'echo') {
      forward(client, client);
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    session.upstream = upstream;
    let connected = false;
    // An upstream that drops packets silently would hold the client for the kernel's minutes-long timeout.
    upstream.setTimeout(upstreamConnectTimeoutMs, () => {
      if (!connected) upstream.destroy(new Error('upstream connect timeout'));
    });
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      forward(client, upstream);
      forward(upstream, client);
    });
    upstream.on('error', () => {
      if (!connected) this.options.sink.upstreamFailed();
      upstream.destroy();
      client.destroy();
    });
    // The upstream closed without error (e.g. after its own FIN and ours): nothing more can flow.
    upstream.once('close', () => {
      if (!connected) client.destroy();
    });
  }
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

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
