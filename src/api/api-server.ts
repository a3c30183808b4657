import { getRequestListener } from '@hono/node-server';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { splitHostPort } from '../config/index.ts';
import { EbbError, ExitCode, ListenError } from '../core/index.ts';
import { createApiApp, type ApiDeps, type ApiOptions } from './api-app.ts';
import { admitBody } from './body-limit.ts';
import { isLoopback } from './request-guard.ts';

export class ApiServer {
  private server: Server | null = null;
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
    const app = createApiApp(this.deps, this.options);
    const toApp = getRequestListener(app.fetch);
    // A body declared too large is answered before the app, unread (issue 16 #6).
    const server = createServer((request, response) => {
      if (admitBody(request, response)) void toApp(request, response);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ListenError(`api ${this.listen}: ${err.message}`, err)));
      server.listen(address.port, address.host, () => resolve());
    });
    const bound = this.server!.address() as AddressInfo;
    this.url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
    return this.url;
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
