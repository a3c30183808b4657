/**
 * What one client may make the front end hold. Node's HTTP/1.1 parser enforces the head size while it
 * parses (the request line counts, RFC 9112 §2.3); the server's timers end slow heads and bodies
 * (slowloris); the rest is checked once the head is parsed.
 */
export interface HttpLimits {
  /** Bytes of request line plus header fields (431 beyond; RFC 6585 §5). Also HTTP/2's header list. */
  maxHeaderSize: number;
  /** Header fields in one request (431 beyond). */
  maxHeaderCount: number;
  /** From the connection's first byte, or the end of the previous response, to the end of a head (408). */
  headersTimeoutMs: number;
  /** For a whole request, body included (408). Slow uploads beyond it are cut. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection (HTTP/1.1) or HTTP/2 session with no stream is closed after this. */
  keepAliveTimeoutMs: number;
  /** For the TLS handshake of a new connection. */
  tlsHandshakeTimeoutMs: number;
  /** Concurrent streams one HTTP/2 session may open (RFC 9113 §6.5.2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** For the upstream's response head (504 beyond). */
  upstreamHeadersTimeoutMs: number;
  /** For a connection to the upstream (502 beyond). */
  upstreamConnectTimeoutMs: number;
}

export const defaultHttpLimits: HttpLimits = {
  maxHeaderSize: 16 * 1024,
  maxHeaderCount: 100,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 30_000,
  tlsHandshakeTimeoutMs: 10_000,
  maxConcurrentStreams: 128,
  upstreamHeadersTimeoutMs: 60_000,
  upstreamConnectTimeoutMs: 5_000,
};
