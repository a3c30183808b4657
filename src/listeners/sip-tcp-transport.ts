import { connect, type Socket } from 'node:net';
import { connect as connectTls, TLSSocket, type ConnectionOptions } from 'node:tls';
import { TcpListeningSocket } from '../net/index.ts';
import { peerKey, SipStreamParser, type SipMessage, type SipPeer } from '../sip/index.ts';
import { TlsAcceptor, type TlsCredentials } from '../tls/index.ts';
import type { SipTransport, SipTransportOptions } from './sip-transport.ts';

/** SIP over TLS (RFC 3261 §26.2, SPEC §11): the pair accepted connections get, and how to dial out. */
export interface SipTlsOptions {
  credentials: TlsCredentials;
  /**
   * Outgoing connections (to the upstream): TLS with these options (verified against Node's CAs and
   * NODE_EXTRA_CA_CERTS by default), or plain TCP when false (the built-in callee, in process).
   */
  dial: ConnectionOptions | false;
  /** A handshake failed or timed out. */
  onFailure?: () => void;
}

const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** A connection further behind than this is dropped rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 5000;
const MAX_CONNECTIONS = 10_000;
const FLOW_CLOSE_WAIT_MS = 5000;

interface Connection {
  readonly id: number;
  readonly socket: Socket;
  readonly parser: SipStreamParser;
  readonly peer: SipPeer;
  readonly key: string;
  connected: boolean;
  /** Opened by a client (a flow, RFC 5626), not by us towards a server. */
  readonly inbound: boolean;
  /** Told when an outgoing connection fails before it is up. */
  failures: Array<(err: Error) => void>;
}

/**
 * SIP over TCP (RFC 3261 §18): a listening server plus the connections it accepted or opened. A message
 * for a peer goes over the connection named in the peer, else over any open connection to that address,
 * else over a new one (connection reuse, §18.2.2 and RFC 5923 spirit). Framing errors close the connection
 * after the answer is written; CRLFCRLF pings get a CRLF pong (RFC 5626 §3.5.1).
 */
export class SipTcpTransport implements SipTransport {
  readonly name: 'tcp' | 'tls';
  readonly #o: SipTransportOptions;
  readonly #tls: SipTlsOptions | undefined;
  readonly #acceptor: TlsAcceptor | undefined;
  readonly #connections = new Map<number, Connection>();
  readonly #byAddress = new Map<string, Connection>();
  #server: TcpListeningSocket | null = null;
  /** The listening socket once it stopped, until its accepted connections are all gone (`finished`). */
  #listening: TcpListeningSocket | null = null;
  #pastAcceptErrors = 0;
  #closed = false;
  #nextId = 1;
  #port: number;

  /** `firstId`: where its connection ids start (a transport that holds it keeps its own below). */
  constructor(options: SipTransportOptions, tls?: SipTlsOptions, firstId = 1) {
    this.#nextId = options.firstConnectionId ?? firstId;
    this.#o = options;
    this.#port = options.port;
    this.#tls = tls;
    this.name = tls ? 'tls' : 'tcp';
    this.#acceptor = tls
      ? new TlsAcceptor({
          credentials: tls.credentials,
          handshakeTimeoutMs: TLS_HANDSHAKE_TIMEOUT_MS,
          onSecure: (secure) => {
            if (this.#closed || this.#connections.size >= MAX_CONNECTIONS) return secure.destroy();
            this.#adopt(secure, { host: secure.remoteAddress ?? '', port: secure.remotePort ?? 0 }, true);
          },
          onFailure: () => tls.onFailure?.(),
        })
      : undefined;
  }

  /** TLS: the certificate and key new connections get from now on (live ones keep theirs, SPEC §11). */
  useTls(credentials: TlsCredentials): void {
    this.#acceptor?.use(credentials);
  }

  get port(): number {
    return this.#port;
  }

  get connections(): number {
    return this.#connections.size;
  }

  get acceptErrors(): number {
    return this.#pastAcceptErrors + (this.#server?.acceptErrors ?? 0);
  }

  async listen(): Promise<void> {
    if (this.#server) return;
    this.#closed = false;
    const server = await TcpListeningSocket.listen({
      host: this.#o.host,
      port: this.#o.port,
      label: `sip/${this.name}`,
      noDelay: true,
      reusePort: this.#o.reusePort,
      onConnection: (socket) => {
        if (this.#connections.size >= MAX_CONNECTIONS) return socket.destroy();
        if (this.#acceptor) return this.#acceptor.accept(socket);
        this.#adopt(socket, { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }, true);
      },
      onAcceptError: (err) => this.#o.onError?.(err),
    });
    this.#port = server.port;
    this.#server = server;
  }

  send(to: SipPeer, data: Buffer, onFail?: (err: Error) => void): void {
    let conn = to.connection === undefined ? undefined : this.#connections.get(to.connection);
    conn ??= this.#byAddress.get(peerKey(to.host, to.port));
    conn ??= this.#dial(to.host, to.port);
    if (!conn) {
      onFail?.(new Error('transport closed'));
      return;
    }
    if (conn.socket.writableLength > MAX_BUFFERED_BYTES) {
      conn.socket.destroy();
      onFail?.(new Error(`connection to ${conn.key} is too far behind`));
      return;
    }
    if (!conn.connected && onFail) conn.failures.push(onFail);
    conn.socket.write(data);
  }

  /** Connection ids of the flows clients opened (for draining registrations, SPEC §14). */
  *flowIds(): Iterable<number> {
    for (const conn of this.#connections.values()) if (conn.inbound) yield conn.id;
  }

  get flows(): number {
    let n = 0;
    for (const conn of this.#connections.values()) if (conn.inbound) n++;
    return n;
  }

  /** Ends one flow after what is queued on it (FIN); destroyed if the peer has not closed it in 5 s. */
  closeFlow(id: number): void {
    const conn = this.#connections.get(id);
    if (!conn) return;
    conn.socket.end();
    conn.socket.setTimeout(FLOW_CLOSE_WAIT_MS, () => conn.socket.destroy());
  }

  /** Stops accepting (what the kernel queued is still taken); the connections stay until `close()`. */
  async stopListening(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#listening = server;
    this.#server = null;
    await server.close();
    this.#pastAcceptErrors += server.acceptErrors;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.stopListening();
    const server = this.#listening;
    this.#listening = null;
    for (const conn of [...this.#connections.values()]) conn.socket.destroy();
    await server?.finished;
  }

  #dial(host: string, port: number): Connection | undefined {
    if (this.#closed) return undefined;
    const dialTls = this.#tls?.dial;
    const raw = connect({ host, port, localAddress: this.#o.host, noDelay: true });
    const socket = dialTls ? connectTls({ ...dialTls, host, port, socket: raw }) : raw;
    socket.setTimeout(CONNECT_TIMEOUT_MS, () =>
      socket.destroy(new Error(`connect to ${peerKey(host, port)} timed out`)),
    );
    return this.#adopt(socket, { host, port }, false);
  }

  #adopt(socket: Socket, address: { host: string; port: number }, connected: boolean): Connection {
    const id = this.#nextId++;
    const peer: SipPeer = { host: address.host, port: address.port, connection: id };
    const parser = new SipStreamParser({
      onMessage: (message: SipMessage) => this.#deliver(() => this.#o.events.onMessage(message, peer)),
      onError: (err) => {
        this.#deliver(() => this.#o.events.onParseError(err, peer));
        socket.end(); // after a framing error nothing more on this connection can be trusted
      },
      onKeepAlive: () => socket.write('\r\n'),
    });
    const conn: Connection = {
      id,
      socket,
      parser,
      peer,
      key: peerKey(address.host, address.port),
      connected,
      inbound: connected,
      failures: [],
    };
    this.#connections.set(id, conn);
    if (!this.#byAddress.has(conn.key)) this.#byAddress.set(conn.key, conn);
    if (conn.inbound) this.#o.onFlowsChanged?.();
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (chunk: Buffer) => parser.push(chunk));
    socket.on('end', () => parser.end());
    socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => {
      conn.connected = true;
      conn.failures = [];
      socket.setTimeout(0);
    });
    socket.on('error', (err) => this.#fail(conn, err));
    socket.once('close', () => {
      this.#fail(conn, new Error(`connection to ${conn.key} closed`));
      this.#connections.delete(id);
      if (this.#byAddress.get(conn.key) === conn) this.#byAddress.delete(conn.key);
      if (conn.inbound) this.#o.onFlowsChanged?.();
    });
    return conn;
  }

  #fail(conn: Connection, err: Error): void {
    const failures = conn.failures;
    conn.failures = [];
    for (const f of failures) f(err);
  }

  #deliver(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#o.onError?.(err);
    }
  }
}
