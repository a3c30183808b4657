import { createServer, type AddressInfo, type Server, type ServerOpts, type Socket } from 'node:net';
import { AcceptError, ListenError } from '../core/index.ts';
import { ErrorThrottle } from './error-throttle.ts';
import { formatAddress } from './format-address.ts';
import { probePortFree } from './port-probe.ts';

export interface TcpListenOptions {
  host: string;
  /** 0: the OS picks one; read `port` afterwards. */
  port: number;
  /** Names the socket's owner in errors (`tcp 127.0.0.1:7000 → builtin:echo`, `agent-check`). */
  label: string;
  onConnection: (socket: Socket) => void;
  /**
   * An accept failed: the first of each errno at once, then at most once a minute with how many were left
   * out (every one is counted in `acceptErrors`). Node passes up what libuv does (ENOBUFS, ENOMEM, EPERM,
   * ENFILE or EMFILE when its reserve descriptor is gone); a plain EMFILE libuv absorbs itself: it frees
   * its reserve descriptor, accepts and closes the connection, so the client sees a close and nothing
   * reaches us — descriptor exhaustion shows in `process_open_fds` / `process_max_fds` instead.
   */
  onAcceptError?: (err: AcceptError) => void;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  /** listen(2) backlog: connects the kernel completes before we accept them (capped by somaxconn). */
  backlog?: number;
  /**
   * SO_REUSEPORT: several sockets share the port and the kernel spreads connects. `true`: shared on
   * purpose (worker threads). Unset: set all the same, so that a new Ebb process can bind beside this one
   * (SPEC §13), but a port someone else holds is EADDRINUSE (`port-probe.ts`).
   */
  reusePort?: boolean;
  /** Connections beyond this many are closed as they are accepted (Node's `maxConnections`). */
  maxConnections?: number;
  /** Told of each connection closed because `maxConnections` were open. */
  onDrop?: () => void;
  /** Makes the server (tests give one whose errors they can raise). Default: `net.createServer`. */
  createServer?: (options: ServerOpts, onConnection: (socket: Socket) => void) => Server;
}

const defaultBacklog = 4096;
/** Upper bound on the event-loop turns `close()` spends accepting queued connections. */
const maxAcceptTurns = 100;

/**
 * A listening TCP socket, bound the one way every front end of Ebb binds: SO_REUSEADDR (libuv sets it on
 * every TCP listener, so a port whose old connections sit in TIME_WAIT can be bound again at once, as
 * `accept()` after `refuse()` does), not shared with a cluster primary (`exclusive`), SO_REUSEPORT so a
 * replacing process can bind beside (SPEC §13). Bind failures are a `ListenError` naming the errno; accept failures after that are counted
 * and reported, never dropped; `close()` accepts what the kernel has already queued before it stops.
 */
export class TcpListeningSocket {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  /** Resolves when the socket is closed and every connection it accepted has closed too. */
  readonly finished: Promise<void>;
  readonly #server: Server;
  #accepted = 0;
  #acceptErrors = 0;
  #closing: Promise<void> | null = null;

  private constructor(server: Server, label: string, host: string) {
    this.#server = server;
    this.label = label;
    this.host = host;
    this.port = (server.address() as AddressInfo).port;
    this.finished = new Promise<void>((resolve) => server.once('close', () => resolve()));
  }

  /** Binds and listens; rejects with a `ListenError` (and leaves nothing bound) when it cannot. */
  static async listen(options: TcpListenOptions): Promise<TcpListeningSocket> {
    // Shared on purpose (threads: reusePort given) or not: a port another process holds is an error.
    if (options.reusePort === undefined) {
      await probePortFree(options.host, options.port, 'tcp').catch((err: unknown) => {
        throw new ListenError(
          `${options.label}: cannot listen on ${formatAddress(options.host, options.port)}`,
          err,
        );
      });
    }
    let socket: TcpListeningSocket | null = null;
    const server = (options.createServer ?? createServer)(
      { allowHalfOpen: options.allowHalfOpen ?? false, noDelay: options.noDelay ?? false },
      (connection) => {
        if (socket) socket.#accepted++;
        options.onConnection(connection);
      },
    );
    if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
    if (options.onDrop) server.on('drop', options.onDrop);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new ListenError(
            `${options.label}: cannot listen on ${formatAddress(options.host, options.port)}`,
            err,
          ),
        ),
      );
      server.listen(
        {
          host: options.host,
          port: options.port,
          backlog: options.backlog ?? defaultBacklog,
          exclusive: true,
          reusePort: options.reusePort ?? true,
        },
        () => resolve(),
      );
    });
    server.removeAllListeners('error');
    socket = new TcpListeningSocket(server, options.label, options.host);
    const listening = socket;
    const throttle = new ErrorThrottle<AcceptError>((err, suppressed) =>
      options.onAcceptError?.(
        suppressed === 0
          ? err
          : new AcceptError(`${err.message} (${suppressed} more since the last)`, err.cause),
      ),
    );
    // Once listening, Node emits 'error' on the server only for a failed accept (net.js onconnection).
    server.on('error', (err) => {
      listening.#acceptErrors++;
      throttle.push(
        new AcceptError(
          `${listening.label}: accept on ${formatAddress(listening.host, listening.port)} failed: ${err.message}`,
          err,
        ),
      );
    });
    return listening;
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.#accepted;
  }

  get acceptErrors(): number {
    return this.#acceptErrors;
  }

  /**
   * Stops listening: when this resolves the kernel refuses new connects. Connections already accepted are
   * left alone (`finished` tells when they are gone). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Connections whose handshake the kernel already completed sit in the accept queue; closing the
    // listening socket now would reset them. Let the event loop accept them first: they become
    // connections like any other. Stop when two turns accept nothing new.
    for (let turn = 0; turn < maxAcceptTurns; turn++) {
      const before = this.#accepted;
      await new Promise<void>((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#accepted === before) break;
    }
    // libuv closes the listening descriptor synchronously inside close(): once it returns, the kernel
    // refuses new connects. Its callback would wait for every accepted connection; `finished` does that.
    this.#server.close();
  }
}
