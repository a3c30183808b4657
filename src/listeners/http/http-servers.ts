import { createServer, type Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { HttpLimits } from './http-limits.ts';

/**
 * Node's HTTP/1.1 server set up against the limits. It never listens — the listener's socket does and
 * hands it connections — so its head and request timers (Node starts them on 'listening') are started
 * here; without them a slowloris would never be cut.
 */
export function http1Server(limits: HttpLimits): Server {
  const server = createServer({
    maxHeaderSize: limits.maxHeaderSize,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often Node checks headersTimeout / requestTimeout (default 30 s: a slowloris would get 40 s).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    requireHostHeader: true,
    noDelay: true,
  });
  // One more than allowed, so that "too many" can be told from "exactly the limit" (Node cuts silently).
  server.maxHeadersCount = limits.maxHeaderCount + 1;
  server.emit('listening');
  return server;
}

/** Node's HTTP/2 server (RFC 9113 §6.5.2 settings) set up against the limits; it never listens either. */
export function http2Server(limits: HttpLimits): Http2Server {
  return createHttp2Server({
    maxHeaderListPairs: limits.maxHeaderCount + 4, // and the four request pseudo-header fields
    maxSessionMemory: 10,
    settings: {
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderSize,
    },
  });
}
