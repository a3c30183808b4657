import type { Socket as UdpSocket } from 'node:dgram';
import { isIP, type Socket } from 'node:net';
import { EbbError, ListenError, type PoolView } from '../core/index.ts';
import { bindUdp, TcpListeningSocket } from '../net/index.ts';
import { AnswerCache, MAX_ROTATIONS } from './answer-cache.ts';
import { decodeQuery, Flag, HEADER_SIZE, Rcode } from './dns-message.ts';
import { encodeResponse, type DnsResponse } from './response-writer.ts';
import { TcpFramer } from './tcp-framer.ts';
import { answerQuery, answerReject, answerServerFailure, type AnswerContext } from './zone-answer.ts';
import { ZoneSerial } from './zone-serial.ts';

/** The subset of a pino logger the server uses. */
export interface DnsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DnsServerOptions {
  /** Port 0 picks a free port, the same for UDP and TCP; read it from `port` after `start()`. */
  listen: { host: string; port: number };
  /** Called once per query; must be a cheap, synchronous snapshot. A throw answers SERVFAIL. */
  view: () => PoolView;
  logger?: DnsLogger;
  /** Advertised and maximum UDP response size (RFC 6891 §6.2.5). Default 1232. */
  maxUdpPayload?: number;
  /** SO_RCVBUF for the UDP socket, so bursts queue instead of dropping. Default 4 MiB; capped by the OS. */
  udpReceiveBufferSize?: number;
  /** Default 256; further connections are closed on accept. */
  maxTcpConnections?: number;
  /** A connection that completes no query for this long is closed (RFC 7766 §6.2.3). Default 10 s. */
  tcpIdleTimeoutMs?: number;
  /** Stop reading from a connection while this many response bytes wait to be sent. Default 256 KiB. */
  maxTcpPendingBytes?: number;
  /** Addresses answered for `ns.<fqdn>`. Default: the listen host, when it is one specific address. */
  nsAddresses?: string[];
  /** SO_REUSEPORT on both sockets, so several servers (worker threads) share the port. Default false. */
  reusePort?: boolean;
}

/** Counters since start, as a plain snapshot. */
export interface DnsServerStats {
  udpQueries: number;
  tcpQueries: number;
  /** Messages not answered: shorter than a header, or responses. */
  dropped: number;
  /** Responses sent with TC set. */
  truncated: number;
  /** Responses by RCODE name. */
  rcodes: Record<RcodeName, number>;
  viewFailures: number;
  tcpConnections: number;
  /** Response bytes waiting in user space for slow TCP readers, over all connections. */
  tcpPendingBytes: number;
  tcpConnectionsTotal: number;
  /** Connections refused because `maxTcpConnections` were open. */
  tcpRefused: number;
  tcpTimeouts: number;
  tcpFramingErrors: number;
  /** Failed accepts on the TCP socket (EMFILE, …). */
  tcpAcceptErrors: number;
  /** Queries answered from already-encoded answers (see `AnswerCache`). */
  answerCacheHits: number;
  /** Answers kept encoded now. */
  answerCacheEntries: number;
}

type RcodeName = keyof typeof Rcode;

/** The counters of a server that has answered nothing yet. */
export function zeroDnsStats(): DnsServerStats {
  return {
    udpQueries: 0,
    tcpQueries: 0,
    dropped: 0,
    truncated: 0,
    rcodes: Object.fromEntries(Object.keys(Rcode).map((k) => [k, 0])) as Record<RcodeName, number>,
    viewFailures: 0,
    tcpConnections: 0,
    tcpPendingBytes: 0,
    tcpConnectionsTotal: 0,
    tcpRefused: 0,
    tcpTimeouts: 0,
    tcpFramingErrors: 0,
    tcpAcceptErrors: 0,
    answerCacheHits: 0,
    answerCacheEntries: 0,
  };
}
const rcodeNames = new Map<number, RcodeName>(Object.entries(Rcode).map(([k, v]) => [v, k as RcodeName]));

const defaults = {
  maxUdpPayload: 1232,
  udpReceiveBufferSize: 4 * 1024 * 1024,
  maxTcpConnections: 256,
  tcpIdleTimeoutMs: 10_000,
  maxTcpPendingBytes: 256 * 1024,
} as const;

/** How many times to look for a port free for both UDP and TCP when asked for port 0. */
const PORT_ZERO_ATTEMPTS = 20;
const VIEW_FAILURE_LOG_INTERVAL_MS = 5000;

/**
 * ```
 *  idle ──start()──▶ starting ──bound──▶ listening ──close()──▶ closing ──▶ closed
 *                        └───────────── bind failed ─────────────────────────▲
 * ```
 * (`close()` from idle or starting also ends in closed.)
 */
export const DnsServerState = {
  idle: 'idle',
  starting: 'starting',
  listening: 'listening',
  closing: 'closing',
  closed: 'closed',
} as const;
export type DnsServerState = (typeof DnsServerState)[keyof typeof DnsServerState];

const allowed: Record<DnsServerState, readonly DnsServerState[]> = {
  idle: ['starting', 'closed'],
  starting: ['listening', 'closing', 'closed'],
  listening: ['closing'],
  closing: ['closed'],
  closed: [],
};

/** The authoritative DNS server for the pool zone (SPEC §4.1), on UDP and TCP at one address. */
export class DnsServer {
  #state: DnsServerState = DnsServerState.idle;
  readonly #opts: Required<Omit<DnsServerOptions, 'logger' | 'nsAddresses' | 'reusePort'>> & {
    reusePort?: boolean;
  };
  readonly #logger: DnsLogger | undefined;
  readonly #nsAddresses: readonly string[];
  readonly #serial = new ZoneSerial();
  readonly #connections = new Set<Socket>();
  #udp: UdpSocket | null = null;
  #tcp: TcpListeningSocket | null = null;
  #port = 0;
  #starting: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #lastViewFailureLog = 0;
  #pastAcceptErrors = 0;
  readonly #stats = {
    udpQueries: 0,
    tcpQueries: 0,
    dropped: 0,
    truncated: 0,
    viewFailures: 0,
    tcpConnectionsTotal: 0,
    tcpRefused: 0,
    tcpTimeouts: 0,
    tcpFramingErrors: 0,
  };
  readonly #rcodes = new Map<RcodeName, number>();
  readonly #cache = new AnswerCache();

  constructor(options: DnsServerOptions) {
    this.#opts = {
      listen: options.listen,
      view: options.view,
      maxUdpPayload: options.maxUdpPayload ?? defaults.maxUdpPayload,
      udpReceiveBufferSize: options.udpReceiveBufferSize ?? defaults.udpReceiveBufferSize,
      maxTcpConnections: options.maxTcpConnections ?? defaults.maxTcpConnections,
      tcpIdleTimeoutMs: options.tcpIdleTimeoutMs ?? defaults.tcpIdleTimeoutMs,
      maxTcpPendingBytes: options.maxTcpPendingBytes ?? defaults.maxTcpPendingBytes,
      reusePort: options.reusePort,
    };
    this.#logger = options.logger;
    const host = options.listen.host;
    const specific = isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::';
    this.#nsAddresses = options.nsAddresses ?? (specific ? [host] : []);
  }

  get state(): DnsServerState {
    return this.#state;
  }

  /** The bound port (UDP and TCP); 0 before `start()` has resolved. */
  get port(): number {
    return this.#port;
  }

  address(): { host: string; port: number } {
    return { host: this.#opts.listen.host, port: this.#port };
  }

  stats(): DnsServerStats {
    const rcodes = Object.fromEntries(Object.keys(Rcode).map((k) => [k, 0])) as Record<RcodeName, number>;
    for (const [k, v] of this.#rcodes) rcodes[k] = v;
    let tcpPendingBytes = 0;
    for (const socket of this.#connections) tcpPendingBytes += socket.writableLength;
    return {
      ...this.#stats,
      rcodes,
      tcpConnections: this.#connections.size,
      tcpPendingBytes,
      tcpAcceptErrors: this.#pastAcceptErrors + (this.#tcp?.acceptErrors ?? 0),
      answerCacheHits: this.#cache.hits,
      answerCacheEntries: this.#cache.size,
    };
  }

  /** Binds UDP and TCP. Resolves once both listen; the same promise however often it is called. */
  start(): Promise<void> {
    if (this.#state === DnsServerState.closing || this.#state === DnsServerState.closed) {
      return Promise.reject(new EbbError('EBB_DNS_CLOSED', 'dns: the server was closed; create a new one'));
    }
    if (this.#starting) return this.#starting;
    this.#transition(DnsServerState.starting);
    this.#starting = this.#bind().then(
      () => {
        if (this.#state !== DnsServerState.starting) return; // closed while binding
        this.#transition(DnsServerState.listening);
        this.#logger?.info(
          { host: this.#opts.listen.host, port: this.#port },
          'dns: listening on udp and tcp',
        );
      },
      (err: unknown) => {
        if (this.#state === DnsServerState.starting) this.#transition(DnsServerState.closed);
        throw err;
      },
    );
    return this.#starting;
  }

  /** Stops listening and drops open TCP connections. Idempotent: always the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#state === DnsServerState.idle) {
      this.#transition(DnsServerState.closed);
      return;
    }
    if (this.#state === DnsServerState.starting || this.#state === DnsServerState.listening) {
      this.#transition(DnsServerState.closing);
    }
    await this.#starting?.catch(() => undefined);
    await this.#release();
    if (this.#state === DnsServerState.closing) this.#transition(DnsServerState.closed);
    this.#logger?.info({ port: this.#port }, 'dns: closed');
  }

  #transition(to: DnsServerState): void {
    if (!allowed[this.#state].includes(to)) {
      throw new EbbError('EBB_DNS_BAD_TRANSITION', `dns: cannot go from ${this.#state} to ${to}`);
    }
    this.#state = to;
  }

  async #release(): Promise<void> {
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = null;
    this.#tcp = null;
    this.#pastAcceptErrors += tcp?.acceptErrors ?? 0;
    for (const socket of this.#connections) socket.destroy();
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp?.close().then(() => tcp.finished),
    ]);
  }

  async #bind(): Promise<void> {
    const { host, port } = this.#opts.listen;
    const attempts = port === 0 ? PORT_ZERO_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        this.#tcp = await this.#listenTcp(host, port);
        const bound = this.#tcp.port;
        this.#udp = await this.#bindUdp(host, bound);
        this.#port = bound;
        if (this.#state !== DnsServerState.starting) await this.#release(); // closed while binding
        return;
      } catch (err) {
        await this.#release();
        // Port 0 picks a TCP port that UDP may already have in use: try another one.
        const inUse = err instanceof ListenError && err.errno === 'EADDRINUSE';
        if (!inUse || attempt >= attempts) throw err;
      }
    }
  }

  #listenTcp(host: string, port: number): Promise<TcpListeningSocket> {
    return TcpListeningSocket.listen({
      host,
      port,
      label: 'dns.listen (tcp)',
      backlog: 511,
      noDelay: true,
      reusePort: this.#opts.reusePort,
      maxConnections: this.#opts.maxTcpConnections,
      onDrop: () => this.#stats.tcpRefused++,
      onConnection: (socket) => this.#onConnection(socket),
      onAcceptError: (err) => this.#logger?.warn({ code: err.code, errno: err.errno, err }, err.message),
    });
  }

  async #bindUdp(host: string, port: number): Promise<UdpSocket> {
    const udp = await bindUdp({
      host,
      port,
      label: 'dns.listen (udp)',
      recvBufferSize: this.#opts.udpReceiveBufferSize,
      reusePort: this.#opts.reusePort,
      onError: (err) => this.#logger?.warn({ code: err.code, errno: err.errno, err }, err.message),
    });
    udp.on('message', (msg, rinfo) => {
      const out = this.#handle(msg, 'udp');
      if (out === null) return;
      try {
        udp.send(out, rinfo.port, rinfo.address, () => undefined); // send errors: the client is gone
      } catch {
        // the socket closed under us
      }
    });
    return udp;
  }

  #onConnection(socket: Socket): void {
    if (this.#state !== DnsServerState.listening) {
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    this.#stats.tcpConnectionsTotal++;
    // Refreshed only by whole queries and by written responses draining, so a client trickling bytes
    // (slow loris) is cut off like an idle one.
    const idle = setTimeout(() => {
      this.#stats.tcpTimeouts++;
      socket.destroy();
    }, this.#opts.tcpIdleTimeoutMs);
    idle.unref();
    const framer = new TcpFramer({
      message: (msg) => {
        idle.refresh();
        const out = this.#handle(msg, 'tcp');
        if (out === null || socket.destroyed) return;
        socket.write(out);
      },
      error: (code) => {
        this.#stats.tcpFramingErrors++;
        this.#logger?.debug({ code, remote: socket.remoteAddress }, 'dns: bad tcp framing, closing');
        socket.destroy();
      },
    });
    socket.on('data', (chunk: Buffer) => {
      // Answers to queries pipelined in one chunk leave in one write (RFC 7766 §6.2.1.1).
      socket.cork();
      framer.push(chunk);
      socket.uncork();
      // Back-pressure: a client that sends without reading is not answered into an unbounded buffer.
      if (socket.writableLength > this.#opts.maxTcpPendingBytes) socket.pause();
    });
    socket.on('drain', () => {
      idle.refresh();
      socket.resume();
    });
    socket.on('error', () => undefined); // resets and the like: 'close' follows
    socket.on('close', () => {
      clearTimeout(idle);
      this.#connections.delete(socket);
    });
  }

  /** One message in, one response (or nothing) out. Never throws. */
  #handle(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    try {
      return this.#answer(msg, transport);
    } catch (err) {
      // Only a view the writer cannot encode gets here (a member id that is no DNS label): SERVFAIL.
      this.#viewFailed(err);
      try {
        const decoded = decodeQuery(msg);
        if (decoded.kind !== 'query') return null;
        const response = answerServerFailure(decoded.query, this.#context(transport, null));
        const out = encodeResponse(response, transport === 'tcp');
        this.#count(response, out, transport);
        return out;
      } catch {
        return null;
      }
    }
  }

  /**
   * A query seen before, while the pool's answers stayed the same, is answered from the cache without
   * being decoded again: the same bytes after the ID decode the same way (see `AnswerCache`).
   */
  #answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    let view: PoolView | null = null;
    let viewError: unknown = null;
    try {
      view = this.#opts.view();
    } catch (err) {
      viewError = err;
    }
    const key = view && msg.length >= HEADER_SIZE ? AnswerCache.keyOf(msg, transport) : null;
    if (view && key !== null) {
      this.#cache.use(view);
      const hit = this.#cache.get(key);
      if (hit) {
        this.#countQuery(transport);
        this.#tally(hit.rcode as RcodeName | undefined, hit.truncated);
        return AnswerCache.answer(hit, msg.readUInt16BE(0), transport === 'tcp' ? 2 : 0);
      }
    }

    const decoded = decodeQuery(msg);
    if (decoded.kind === 'drop') {
      this.#stats.dropped++;
      return null;
    }
    this.#countQuery(transport);
    const tcp = transport === 'tcp';
    if (decoded.kind === 'reject') {
      const response = answerReject(decoded.id, decoded.flags, decoded.rcode);
      const out = encodeResponse(response, tcp);
      this.#count(response, out, transport);
      return out;
    }
    if (!view) {
      this.#viewFailed(viewError);
      const response = answerServerFailure(decoded.query, this.#context(transport, null));
      const out = encodeResponse(response, tcp);
      this.#count(response, out, transport);
      return out;
    }
    // Cached answers are built unshuffled and kept in every rotation instead (round robin).
    const context = this.#context(transport, view);
    const response = answerQuery(
      decoded.query,
      view,
      key === null ? context : { ...context, random: keepOrder },
    );
    const encodings = rotations(response).map((r) => encodeResponse(r, tcp));
    // A random rotation goes out first: queries that differ every time (an EDNS cookie, a random-case
    // name) each miss the cache, and must not all see the same member first. The next hit gets the next.
    const first = Math.floor(Math.random() * encodings.length);
    const out = encodings[first]!;
    const { rcode, truncated } = this.#count(response, out, transport);
    if (key !== null)
      this.#cache.set(key, { encodings, rcode, truncated, next: (first + 1) % encodings.length });
    return out;
  }

  #countQuery(transport: 'udp' | 'tcp'): void {
    if (transport === 'udp') this.#stats.udpQueries++;
    else this.#stats.tcpQueries++;
  }

  #context(transport: 'udp' | 'tcp', view: PoolView | null): AnswerContext {
    return {
      transport,
      maxUdpPayload: this.#opts.maxUdpPayload,
      nsAddresses: this.#nsAddresses,
      serial: () => (view ? this.#serial.current(view) : 0),
    };
  }

  #count(
    response: DnsResponse,
    out: Buffer,
    transport: 'udp' | 'tcp',
  ): { rcode: RcodeName | undefined; truncated: boolean } {
    const flags = out.readUInt16BE(transport === 'tcp' ? 4 : 2);
    const truncated = (flags & Flag.tc) !== 0;
    const rcode = rcodeNames.get(response.opt ? response.opt.rcode : flags & 0xf);
    this.#tally(rcode, truncated);
    return { rcode, truncated };
  }

  #tally(rcode: RcodeName | undefined, truncated: boolean): void {
    if (truncated) this.#stats.truncated++;
    if (rcode) this.#rcodes.set(rcode, (this.#rcodes.get(rcode) ?? 0) + 1);
  }

  #viewFailed(err: unknown): void {
    this.#stats.viewFailures++;
    const now = Date.now();
    if (now - this.#lastViewFailureLog < VIEW_FAILURE_LOG_INTERVAL_MS) return;
    this.#lastViewFailureLog = now;
    this.#logger?.warn(
      { err, failures: this.#stats.viewFailures },
      'dns: pool view failed, answering SERVFAIL',
    );
  }
}

/** A `random` for the zone's shuffle that leaves the order as it is (Fisher–Yates with j = i). */
const keepOrder = () => 1 - Number.EPSILON;

/**
 * The response with its answer RRset in each rotation, when it is one RRset of several records (the
 * shuffled lists of the zone); else the response alone. RRset order carries no meaning (RFC 2181 §5).
 */
function rotations(response: DnsResponse): DnsResponse[] {
  const answers = response.answers;
  if (answers.length < 2 || answers.some((a) => a.type !== answers[0]!.type)) return [response];
  const count = Math.min(answers.length, MAX_ROTATIONS);
  return Array.from({ length: count }, (_, k) => ({
    ...response,
    answers: [...answers.slice(k), ...answers.slice(0, k)],
  }));
}
