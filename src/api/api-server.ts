import { getRequestListener } from '@hono/node-server';
import { createServer, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import { splitHostPort } from '../config/index.ts';
import { EbbError, ExitCode, ListenError } from '../core/index.ts';
import { createApiApp, type ApiDeps, type ApiOptions } from './api-app.ts';
import { admitBody } from './body-limit.ts';
import { isLoopback } from './request-guard.ts';
import { probePortFree } from '../net/index.ts';

export class ApiServer {
  private server: Server | null = null;
  /** Aborted when this process hands over: the event streams end, and every answer says `Connection: close`. */
  private readonly handingOff = new AbortController();
  private readonly deps: ApiDeps;
  private readonly listen: string;
  private readonly options: ApiOptions;
  url = '';

  constructor(deps: ApiDeps, listen: string, options: ApiOptions = {}) {
    this.deps = deps;
    this.listen = listen;
    this.options = { processMetrics: true, listen, ...options };
  }

  async start(): Promise<string> {
    const address = splitHostPort(this.listen);
    if (!address)
      throw new EbbError('EBB_BAD_LISTEN', `api.listen: "${this.listen}" must be host:port`, {
        exitCode: ExitCode.usage,
      });
    if (!isLoopback(address.host) && !this.deps.tokens?.enabled) {
      throw new EbbError(
        'EBB_API_NOT_LOOPBACK',
        `api.listen: refusing to serve the API on ${address.host} without access tokens; bind 127.0.0.1`,
        { exitCode: ExitCode.usage },
      );
    }
    const app = createApiApp(this.deps, { ...this.options, streamsEnd: this.handingOff.signal });
    const toApp = getRequestListener(app.fetch);
    // A body declared too large is answered before the app, unread (issue 16 #6).
    const server = createServer((request, response) => {
      // RFC 9112 §9.6: a server that is about to close says so in its answer, so the client does not
      // send its next request on this connection.
      if (this.handingOff.signal.aborted) response.setHeader('connection', 'close');
      if (admitBody(request, response)) void toApp(request, response);
    });
    this.server = server;
    await probePortFree(address.host, address.port, 'tcp').catch((err: unknown) => {
      this.server = null;
      throw new ListenError(`api ${this.listen}: ${(err as Error).message}`, err);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ListenError(`api ${this.listen}: ${err.message}`, err)));
      // SO_REUSEPORT: a new Ebb process binds beside this one before it hands over (SPEC §13).
      server.listen({ port: address.port, host: address.host, reusePort: true }, () => resolve());
    });
    const bound = this.server!.address() as AddressInfo;
    this.url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
    return this.url;
  }

  /**
   * Hands over to a new process bound beside this one (SPEC §13): stops listening, so new connections go
   * to it; ends the event streams (EventSource reconnects, and reaches the new process); answers what
   * arrives on the connections it has — a `pause` waiting for its confirmation among them — with
   * `Connection: close`; and resolves once every connection is gone. Past `deadlineMs` what is left is cut.
   *
   * An idle keep-alive connection is not closed from this side: a client may be sending its next request
   * on it at that very moment, and that request would fail (RFC 9112 §9.3.1 lets a client retry it, and
   * Node's fetch does not). The client closes it first, by the `Keep-Alive: timeout=` this server
   * advertises, or sends one more request and gets `Connection: close`; at the server's own keep-alive
   * timeout Node closes what is left. So `net.Server#close`: http.Server's own `close()` would also close
   * idle connections at once.
   */
  async handOff(deadlineMs: number): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    this.handingOff.abort();
    const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
    const deadline = setTimeout(() => server.closeAllConnections(), deadlineMs);
    await closed;
    clearTimeout(deadline);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
