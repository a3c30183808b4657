import { EbbError } from '../../core/index.ts';

/**
 * The ways a proxied HTTP exchange fails, each with a stable code and the status the client gets on the
 * wire (RFC 9110 §15). Callers and tests match on `code`; `status` is what the client sees.
 */
export const HttpErrorCode = {
  /** Malformed request: bad syntax, bad framing (RFC 9112 §6.3), duplicate Host (RFC 9112 §3.2). */
  badRequest: 'EBB_HTTP_BAD_REQUEST',
  /** The request head is larger than the limit, or has more fields (RFC 6585 §5). */
  headersTooLarge: 'EBB_HTTP_HEADERS_TOO_LARGE',
  /** The head or the whole request did not arrive in time (slowloris; RFC 9110 §15.5.9). */
  requestTimeout: 'EBB_HTTP_REQUEST_TIMEOUT',
  /** The upstream could not be reached, or broke off before its response head (RFC 9110 §15.6.3). */
  upstreamUnreachable: 'EBB_HTTP_UPSTREAM_UNREACHABLE',
  /** The upstream took too long to send its response head (RFC 9110 §15.6.5). */
  upstreamTimeout: 'EBB_HTTP_UPSTREAM_TIMEOUT',
  /** Cut by Ebb at a deadline or a hard stop before the response began (RFC 9110 §15.6.4). */
  ended: 'EBB_HTTP_ENDED',
  /** A method the front end does not carry (HTTP/2 CONNECT; RFC 9110 §15.6.2). */
  notImplemented: 'EBB_HTTP_NOT_IMPLEMENTED',
} as const;
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

const wireStatus: Record<HttpErrorCode, number> = {
  EBB_HTTP_BAD_REQUEST: 400,
  EBB_HTTP_HEADERS_TOO_LARGE: 431,
  EBB_HTTP_REQUEST_TIMEOUT: 408,
  EBB_HTTP_UPSTREAM_UNREACHABLE: 502,
  EBB_HTTP_UPSTREAM_TIMEOUT: 504,
  EBB_HTTP_ENDED: 503,
  EBB_HTTP_NOT_IMPLEMENTED: 501,
};

/** One failed exchange; `status` is the HTTP status sent to the client (when a response can still be sent). */
export class HttpError extends EbbError {
  readonly status: number;
  constructor(code: HttpErrorCode, message: string, cause?: unknown) {
    const status = wireStatus[code];
    super(code, message, { httpStatus: status, cause });
    this.status = status;
  }
}

/**
 * The error Node's HTTP/1.1 parser (llhttp) or server raised on a client connection, as an `HttpError`.
 * Node's codes: `HPE_HEADER_OVERFLOW` (head over `maxHeaderSize`), `HPE_*` (syntax, framing, CL + TE),
 * `ERR_HTTP_REQUEST_TIMEOUT` (headersTimeout / requestTimeout).
 */
export function clientError(err: NodeJS.ErrnoException): HttpError {
  const code = err.code ?? '';
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new HttpError(HttpErrorCode.headersTooLarge, 'request head too large', err);
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') {
    return new HttpError(HttpErrorCode.requestTimeout, 'request not received in time', err);
  }
  return new HttpError(HttpErrorCode.badRequest, `malformed request (${code || err.message})`, err);
}
