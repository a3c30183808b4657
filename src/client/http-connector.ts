import { Agent, request, type Dispatcher } from 'undici';
import { EbbError } from '../core/index.ts';
import { NoMemberAcceptedError, RetryReason, type ConnectAttempt } from './pool-connector.ts';
import type { Endpoint } from './pool-resolver.ts';

export interface HttpConnectorOptions {
  /** https to the members (their listener has `tls:`). */
  tls?: boolean;
  /** PEM CA certificates to trust for https, instead of the system's. */
  ca?: string | Buffer;
  /** Per member: for the connect (default 2 s). */
  timeoutMs?: number;
  /** Per member: from the request sent to the response head (default 10 s). */
  responseTimeoutMs?: number;
}

export interface HttpRequest {
  /** Origin-form target: `/healthz`, `/delay?ms=300`. */
  path: string;
  method?: string;
  headers?: Record<string, string>;
  /** A body the connector can send again to the next member. */
  body?: string | Buffer;
}

/** The response of the member that answered, with the attempts that led to it. */
export interface HttpAnswer {
  endpoint: Endpoint;
  attempts: ConnectAttempt[];
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
}

/** A request that failed at a member in a way the connector must not repeat elsewhere. */
export class HttpRequestError extends EbbError {
  readonly attempts: ConnectAttempt[];
  constructor(attempts: ConnectAttempt[], cause: unknown) {
    const last = attempts.at(-1);
    super(
      'EBB_HTTP_REQUEST_FAILED',
      `request failed at ${last?.endpoint.host}:${last?.endpoint.port}: ${last?.detail ?? last?.outcome}`,
      { cause },
    );
    this.attempts = attempts;
  }
}

/** RFC 9110 §9.2.2: a request that may be sent again after a connection broke under it. */
const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * The client connector for http services (SPEC §4.4, §10): each request tries the members in the order
 * given, over keep-alive connections shared by all requests. It moves to the next member on a refused
 * connection, a connect timeout or an HTTP 503 — the member did not take the request — and, for an
 * idempotent request, on a connection that broke or timed out before the response head (a keep-alive
 * connection the member closed as it paused). Any other response is the answer.
 */
export class HttpConnector {
  readonly #agent: Agent;
  readonly #scheme: 'http' | 'https';
  readonly #responseTimeoutMs: number;
  readonly #tls: boolean;

  constructor(options: HttpConnectorOptions = {}) {
    this.#responseTimeoutMs = options.responseTimeoutMs ?? 10_000;
    this.#tls = options.tls ?? false;
    this.#scheme = this.#tls ? 'https' : 'http';
    this.#agent = new Agent({
      connect: { timeout: options.timeoutMs ?? 2000, ...(options.ca ? { ca: options.ca } : {}) },
      keepAliveTimeout: 10_000,
      headersTimeout: this.#responseTimeoutMs,
    });
  }

  async request(endpoints: Endpoint[], req: HttpRequest): Promise<HttpAnswer> {
    const method = (req.method ?? 'GET').toUpperCase();
    const attempts: ConnectAttempt[] = [];
    for (const endpoint of endpoints) {
      const headers = { ...req.headers };
      // Over TLS the member is named by its SRV target (SNI and the certificate check use Host).
      if (this.#tls && endpoint.name && !Object.keys(headers).some((h) => h.toLowerCase() === 'host'))
        headers.host = `${endpoint.name.replace(/\.$/, '')}:${endpoint.port}`;
      let response: Dispatcher.ResponseData;
      try {
        response = await request(`${this.#scheme}://${hostPort(endpoint)}${req.path}`, {
          dispatcher: this.#agent,
          method: method as Dispatcher.HttpMethod,
          headers,
          ...(req.body !== undefined ? { body: req.body } : {}),
          headersTimeout: this.#responseTimeoutMs,
        });
      } catch (err) {
        const outcome = failureOutcome(err);
        attempts.push({ endpoint, outcome: outcome.reason, detail: outcome.detail });
        // The member may have taken a request whose connection then broke: only an idempotent one is
        // sent again (RFC 9110 §9.2.2). A refused or timed-out connect never reached it.
        if (outcome.beforeSend || idempotent.has(method)) continue;
        throw new HttpRequestError(attempts, err);
      }
      if (response.statusCode === 503) {
        // RFC 9110 §15.6.4: the member is not taking requests now; another may.
        await response.body.dump().catch(() => {});
        attempts.push({ endpoint, outcome: RetryReason.protocolRefusal, detail: 'HTTP 503' });
        continue;
      }
      attempts.push({ endpoint, outcome: 'connected', detail: `HTTP ${response.statusCode}` });
      return {
        endpoint,
        attempts,
        statusCode: response.statusCode,
        headers: response.headers,
        body: response.body,
      };
    }
    throw new NoMemberAcceptedError(attempts);
  }

  /** Lets requests in flight finish, then closes the connections. */
  close(): Promise<void> {
    return this.#agent.close();
  }

  /** Aborts what is in flight and closes the connections now. */
  destroy(): Promise<void> {
    return this.#agent.destroy();
  }
}

export function hostPort(endpoint: Endpoint): string {
  return endpoint.host.includes(':')
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}

/** What a failed attempt means: why it moved on, and whether the request surely never reached the member. */
function failureOutcome(err: unknown): {
  reason: ConnectAttempt['outcome'];
  detail: string;
  beforeSend: boolean;
} {
  const code = errorCode(err);
  switch (code) {
    case 'ECONNREFUSED':
      return { reason: RetryReason.refused, detail: code, beforeSend: true };
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { reason: RetryReason.timeout, detail: code, beforeSend: true };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'ETIMEDOUT':
      return { reason: RetryReason.timeout, detail: code, beforeSend: false };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return { reason: RetryReason.reset, detail: code, beforeSend: false };
    default:
      return { reason: 'error', detail: code ?? (err as Error).message, beforeSend: false };
  }
}

function errorCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string') return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}
