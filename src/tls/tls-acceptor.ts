import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { TlsCredentials } from './tls-credentials.ts';
import { TlsHandshakeError } from './tls-errors.ts';

export interface TlsAcceptorOptions {
  credentials: TlsCredentials;
  /** ALPN protocols offered, in the server's order of preference (RFC 7301): `['h2', 'http/1.1']`. */
  alpnProtocols?: string[];
  /** A client that has not finished its handshake by then is dropped (a slowloris of the TLS kind). */
  handshakeTimeoutMs: number;
  /** A handshake finished: `alpnProtocol` says what was agreed (false when the client offered none). */
  onSecure: (socket: TLSSocket) => void;
  /** A handshake failed or timed out; the connection is closed. */
  onFailure?: (err: TlsHandshakeError) => void;
}

/**
 * The server side of TLS for connections a listener accepted itself: Node's own TLS server, which never
 * listens, runs each handshake (ALPN, timeout, alerts), so the sockets it hands over are exactly what a
 * listening `tls.Server` would give — HTTP/2 sessions included. `use()` swaps the certificate for the
 * connections that arrive from then on; a connection keeps the context it was made with (SPEC §11).
 */
export class TlsAcceptor {
  readonly #server: Server;

  constructor(options: TlsAcceptorOptions) {
    this.#server = createServer(
      {
        ...contextOptions(options.credentials),
        ...(options.alpnProtocols ? { ALPNProtocols: options.alpnProtocols } : {}),
        handshakeTimeout: options.handshakeTimeoutMs,
        requestCert: false,
      },
      options.onSecure,
    );
    this.#server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      socket.destroy();
      options.onFailure?.(new TlsHandshakeError(`TLS handshake failed: ${err.message}`, err));
    });
  }

  /** The certificate and key new connections get from now on. */
  use(credentials: TlsCredentials): void {
    this.#server.setSecureContext(contextOptions(credentials));
  }

  /** Runs the handshake on an accepted TCP connection. */
  accept(socket: Socket): void {
    this.#server.emit('connection', socket);
  }
}

/** TLS 1.2 is the oldest version still allowed for new deployments (RFC 9325 §3.1.1). */
function contextOptions(credentials: TlsCredentials): { cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' } {
  return { cert: credentials.source.cert, key: credentials.source.key, minVersion: 'TLSv1.2' };
}
