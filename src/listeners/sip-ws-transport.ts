import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { TcpListeningSocket } from '../net/index.ts';
import { parseDatagram, SipParseError, type SipPeer, type SipTransportName } from '../sip/index.ts';
import { TlsAcceptor, type TlsCredentials } from '../tls/index.ts';
import { SipTcpTransport } from './sip-tcp-transport.ts';
import type { SipTransport, SipTransportOptions } from './sip-transport.ts';

/** RFC 7118 §4.1: the WebSocket subprotocol of SIP. */
export const SIP_WS_SUBPROTOCOL = 'sip';
/** RFC 6455 §7.4.1 / IANA: 1012 Service Restart — the client should reconnect (elsewhere). */
export const WS_CLOSE_SERVICE_RESTART = 1012;
const MAX_MESSAGE_BYTES = 65_535;
const MAX_CONNECTIONS = 10_000;
/** Connection ids of the upstream side (plain TCP) start here, far above the WebSocket ones. */
const UPSTREAM_IDS_FROM = 1 << 30;
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

interface WsFlow {
  readonly id: number;
  readonly ws: WebSocket;
  readonly peer: SipPeer;
}

/**
 * SIP over WebSocket (RFC 7118) for browsers and WebRTC gateways: an HTTP(S) server that takes only
 * upgrades offering the `sip` subprotocol (others get 400, plain requests 426), one SIP message per
 * frame, answered in text frames. It is the same WebSocket machinery as the http listener's built-in app
 * (`ws` on a socket Ebb accepted itself, TLS by the shared `TlsAcceptor` for `wss`). Towards the upstream
 * it speaks SIP over TCP (a WebRTC front end in front of a SIP server). Ebb closes a flow with 1012
 * (Service Restart): the client reconnects, and through DNS reaches an accepting member.
 */
export class SipWsTransport implements SipTransport {
  readonly name: 'ws' | 'wss';
  readonly #o: SipTransportOptions;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #acceptor: TlsAcceptor | undefined;
  readonly #upstream: SipTcpTransport;
  readonly #flows = new Map<number, WsFlow>();
  #server: TcpListeningSocket | null = null;
  #pastAcceptErrors = 0;
  #nextId = 1;
  #port: number;
  #closed = false;

  constructor(options: SipTransportOptions, tls?: { credentials: TlsCredentials }) {
    this.#o = options;
    this.#port = options.port;
    this.name = tls ? 'wss' : 'ws';
    this.#upstream = new SipTcpTransport(
      { ...options, onFlowsChanged: undefined },
      undefined,
      UPSTREAM_IDS_FROM,
    );
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_MESSAGE_BYTES,
      handleProtocols: (offered) => (offered.has(SIP_WS_SUBPROTOCOL) ? SIP_WS_SUBPROTOCOL : false),
    });
    this.#http = createServer((_req, res) => {
      res.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain' });
      res.end('SIP over WebSocket (RFC 7118): upgrade with Sec-WebSocket-Protocol: sip\n');
    });
    this.#http.headersTimeout = 10_000;
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    this.#http.on('clientError', (_err, socket: Duplex) => socket.destroy());
    this.#acceptor = tls
      ? new TlsAcceptor({
          credentials: tls.credentials,
          alpnProtocols: ['http/1.1'],
          handshakeTimeoutMs: TLS_HANDSHAKE_TIMEOUT_MS,
          onSecure: (secure) => this.#http.emit('connection', secure),
        })
      : undefined;
  }

  get port(): number {
    return this.#port;
  }

  get acceptErrors(): number {
    return this.#pastAcceptErrors + (this.#server?.acceptErrors ?? 0);
  }

  get flows(): number {
    return this.#flows.size;
  }

  flowIds(): Iterable<number> {
    return this.#flows.keys();
  }

  /** wss: the certificate and key new connections get from now on (SPEC §11). */
  useTls(credentials: TlsCredentials): void {
    this.#acceptor?.use(credentials);
  }

  async listen(): Promise<void> {
    if (this.#server) return;
    this.#closed = false;
    const server = await TcpListeningSocket.listen({
      host: this.#o.host,
      port: this.#o.port,
      label: `sip/${this.name}`,
      noDelay: true,
      onConnection: (socket) => {
        if (this.#flows.size >= MAX_CONNECTIONS) return socket.destroy();
        if (this.#acceptor) this.#acceptor.accept(socket);
        else this.#http.emit('connection', socket);
      },
      onAcceptError: (err) => this.#o.onError?.(err),
    });
    this.#port = server.port;
    this.#server = server;
  }

  transportOf(to: SipPeer): SipTransportName {
    return to.connection !== undefined && this.#flows.has(to.connection) ? this.name : 'tcp';
  }

  send(to: SipPeer, data: Buffer, onFail?: (err: Error) => void): void {
    const flow = to.connection === undefined ? undefined : this.#flows.get(to.connection);
    if (!flow) {
      // Not a WebSocket client: the upstream, over TCP.
      if (this.#closed) onFail?.(new Error('transport closed'));
      else this.#upstream.send(to, data, onFail);
      return;
    }
    if (flow.ws.readyState !== flow.ws.OPEN) {
      onFail?.(new Error('websocket closed'));
      return;
    }
    // RFC 7118 §5: one message per frame; text, as SIP is UTF-8.
    flow.ws.send(data.toString('utf8'), (err) => err && onFail?.(err));
  }

  /** Closes a client's flow with 1012 once what is queued has gone (SPEC §14, RFC 7118 §5.1). */
  closeFlow(id: number): void {
    this.#flows.get(id)?.ws.close(WS_CLOSE_SERVICE_RESTART, 'maintenance');
  }

  async close(): Promise<void> {
    this.#closed = true;
    const server = this.#server;
    this.#server = null;
    await server?.close();
    this.#pastAcceptErrors += server?.acceptErrors ?? 0;
    const flows = [...this.#flows.values()];
    for (const f of flows) f.ws.close(WS_CLOSE_SERVICE_RESTART, 'maintenance');
    // Give the close handshakes a moment, then cut what is left.
    if (flows.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        timer.unref();
        const check = () => (this.#flows.size === 0 ? (clearTimeout(timer), resolve()) : undefined);
        for (const f of flows) f.ws.once('close', check);
        check();
      });
      for (const f of this.#flows.values()) f.ws.terminate();
    }
    this.#http.closeAllConnections();
    await this.#upstream.close();
    await server?.finished;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (this.#closed || !offered.includes(SIP_WS_SUBPROTOCOL)) {
      // RFC 7118 §4.1: without the sip subprotocol there is no SIP to speak.
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#adopt(ws, req));
  }

  #adopt(ws: WebSocket, req: IncomingMessage): void {
    const id = this.#nextId++;
    const peer: SipPeer = {
      host: req.socket.remoteAddress ?? '',
      port: req.socket.remotePort ?? 0,
      connection: id,
    };
    this.#flows.set(id, { id, ws, peer });
    this.#o.onFlowsChanged?.();
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => this.#onFrame(toBuffer(data), peer, ws));
    ws.on('error', () => ws.terminate());
    ws.once('close', () => {
      this.#flows.delete(id);
      this.#o.onFlowsChanged?.();
    });
  }

  #onFrame(buf: Buffer, peer: SipPeer, ws: WebSocket): void {
    // A CRLF keep-alive (RFC 5626 §3.5.1 over WebSocket, as JsSIP sends it) is answered with a CRLF.
    if (/^(\r\n)+$/.test(buf.toString('latin1'))) {
      if (buf.length >= 4) ws.send('\r\n');
      return;
    }
    try {
      let message;
      try {
        message = parseDatagram(buf);
      } catch (err) {
        if (err instanceof SipParseError) return this.#o.events.onParseError(err, peer);
        throw err;
      }
      this.#o.events.onMessage(message, peer);
    } catch (err) {
      this.#o.onError?.(err);
    }
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
