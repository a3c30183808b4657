import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { appendForwarding, clientAddressOf, type HopInfo } from './forwarded-headers.ts';
import { HttpError, HttpErrorCode } from './http-errors.ts';
import { connectionOptions, isHopByHop } from './hop-by-hop.ts';

/** What the front end sends upstream for one request: undici `DispatchOptions` fields. */
export interface UpstreamRequest {
  method: string;
  path: string;
  /** Flat `[name, value, name, value, …]`, as undici takes raw headers. */
  headers: string[];
  /** The request body, streamed; null when the request has none. */
  body: Readable | null;
  /** The value of `Upgrade` for an upgrade request (undici sets `Connection: upgrade` itself). */
  upgrade: string | null;
}

/** Fields the front end writes itself, or that cannot go to an HTTP/1.1 upstream as they came. */
const rewritten: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'forwarded',
  // Node's server has answered `100 Continue` already (RFC 9110 §10.1.1); undici refuses to send it.
  'expect',
  'host',
]);

/**
 * The upstream request for an HTTP/1.1 request, or the 400/431 that answers it instead. Node's parser
 * (llhttp, strict) has already refused bad syntax, bad chunked framing and Content-Length together with
 * Transfer-Encoding (RFC 9112 §6.3: a smuggling vector); the checks here are the ones it leaves:
 * how many fields, exactly one Host (RFC 9112 §3.2), and a target undici can send.
 */
export function upstreamRequestOf(
  req: IncomingMessage,
  proto: HopInfo['proto'],
  maxHeaderCount: number,
): UpstreamRequest | HttpError {
  const raw = req.rawHeaders;
  if (raw.length / 2 > maxHeaderCount) {
    return new HttpError(HttpErrorCode.headersTooLarge, `more than ${maxHeaderCount} header fields`);
  }
  let host: string | undefined;
  let hosts = 0;
  let priorFor: string | undefined;
  let priorForwarded: string | undefined;
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'host') {
      hosts++;
      host = value;
    } else if (name === 'connection') connection.push(value);
    else if (name === 'x-forwarded-for') priorFor = priorFor === undefined ? value : `${priorFor}, ${value}`;
    else if (name === 'forwarded')
      priorForwarded = priorForwarded === undefined ? value : `${priorForwarded}, ${value}`;
  }
  // RFC 9112 §3.2: a request with more than one Host, or none in HTTP/1.1, gets 400 (Node checks "none").
  if (hosts > 1) return new HttpError(HttpErrorCode.badRequest, 'more than one Host header field');

  let path = req.url ?? '/';
  if (path.startsWith('http://') || path.startsWith('https://')) {
    // RFC 9112 §3.2.2: absolute-form; the target's authority replaces Host.
    let url: URL;
    try {
      url = new URL(path);
    } catch {
      return new HttpError(HttpErrorCode.badRequest, 'malformed request target');
    }
    host = url.host;
    path = `${url.pathname}${url.search}`;
  } else if (path[0] !== '/' && req.method !== 'CONNECT') {
    // asterisk-form (`OPTIONS *`, RFC 9112 §3.2.4) and anything else that is no origin-form.
    return new HttpError(
      HttpErrorCode.notImplemented,
      'only origin-form and absolute-form targets are proxied',
    );
  }

  const listed = connectionOptions(connection);
  const headers: string[] = [];
  if (host !== undefined) headers.push('host', host);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (rewritten.has(lower) || isHopByHop(lower, listed)) continue;
    headers.push(name, raw[i + 1]!);
  }
  appendForwarding(
    headers,
    { clientAddress: clientAddressOf(req.socket.remoteAddress), proto, host },
    priorFor,
    priorForwarded,
  );

  const upgradeValue = req.headers.upgrade;
  const upgrade = typeof upgradeValue === 'string' && listed.has('upgrade') ? upgradeValue : null;
  // RFC 9112 §6.3: a request has a body only if it says so with Content-Length or Transfer-Encoding.
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  return { method: req.method ?? 'GET', path, headers, body: hasBody ? req : null, upgrade };
}

/**
 * The upstream request for an HTTP/2 stream (RFC 9113 §8.3.1 pseudo-header fields): `:authority`
 * becomes Host (§8.3.1), split `cookie` fields are joined with "; " for HTTP/1.1 (§8.2.3), and
 * connection-specific fields, which make an HTTP/2 request malformed anyway (§8.2.2), are dropped.
 */
export function upstreamRequestOfH2(
  headers: Record<string, string | string[] | undefined>,
  body: Readable,
  endStream: boolean,
  clientAddress: string | undefined,
  proto: HopInfo['proto'],
): UpstreamRequest | HttpError {
  const method = headers[':method'];
  const path = headers[':path'];
  if (typeof method !== 'string' || typeof path !== 'string' || path[0] !== '/') {
    return new HttpError(HttpErrorCode.badRequest, 'missing or bad :method or :path');
  }
  const authority = headers[':authority'];
  const host = typeof authority === 'string' ? authority : (headers['host'] as string | undefined);
  const out: string[] = [];
  if (host !== undefined) out.push('host', host);
  let cookie: string | undefined;
  let priorFor: string | undefined;
  let priorForwarded: string | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name[0] === ':') continue;
    const text = Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : value;
    if (name === 'cookie') cookie = text;
    else if (name === 'x-forwarded-for') priorFor = text;
    else if (name === 'forwarded') priorForwarded = text;
    else if (!rewritten.has(name) && !isHopByHop(name, emptySet)) out.push(name, text);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  appendForwarding(out, { clientAddress, proto, host }, priorFor, priorForwarded);
  return { method, path, headers: out, body: endStream ? null : body, upgrade: null };
}

const emptySet: ReadonlySet<string> = new Set();
