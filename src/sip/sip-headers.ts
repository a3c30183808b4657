import { hasControlChar, isToken } from './sip-chars.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';
import type { SipHeader, SipMessage } from './sip-message.ts';

/** RFC 3261 §7.3.3 compact forms, plus those registered later with IANA (RFC 3265, 3515, 3841, 3892, 4028, 4474). */
export const compactHeaderForms = {
  a: 'Accept-Contact',
  b: 'Referred-By',
  c: 'Content-Type',
  d: 'Request-Disposition',
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  j: 'Reject-Contact',
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  o: 'Event',
  r: 'Refer-To',
  s: 'Subject',
  t: 'To',
  u: 'Allow-Events',
  v: 'Via',
  x: 'Session-Expires',
  y: 'Identity',
} as const;

const longByCompact = new Map<string, string>(
  Object.entries(compactHeaderForms).map(([c, long]) => [c, long.toLowerCase()]),
);

/**
 * Headers whose grammar is a comma-separated list, so several lines may be combined into one
 * (RFC 3261 §7.3.1). Others (Date, Authorization, Subject, unknown extensions...) may hold commas in
 * their value and are never split.
 */
const listHeaders = new Set([
  'via',
  'route',
  'record-route',
  'contact',
  'path',
  'service-route',
  'allow',
  'allow-events',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'accept',
  'accept-encoding',
  'accept-language',
  'accept-contact',
  'reject-contact',
  'request-disposition',
  'content-encoding',
  'content-language',
  'warning',
  'call-info',
  'alert-info',
  'error-info',
  'in-reply-to',
  'reason',
  'security-client',
  'security-server',
  'security-verify',
  'p-asserted-identity',
  'p-preferred-identity',
  'p-associated-uri',
  'history-info',
  'diversion',
  'recv-info',
]);

/** The lower-case long form of a header name: `v`, `Via` and `VIA` all give `via`. */
export function headerKey(name: string): string {
  const lower = name.toLowerCase();
  return (lower.length === 1 && longByCompact.get(lower)) || lower;
}

export function sameHeaderName(a: string, b: string): boolean {
  return headerKey(a) === headerKey(b);
}

export function isListHeader(name: string): boolean {
  return listHeaders.has(headerKey(name));
}

/** Splits on commas outside quoted strings and `<...>` (RFC 3261 §7.3.1); empty elements are dropped. */
export function splitHeaderValues(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  let angle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (c === ',' && !angle) {
      push(value.slice(start, i));
      start = i + 1;
    }
  }
  push(value.slice(start));
  return out;

  function push(part: string): void {
    const t = part.trim();
    if (t !== '') out.push(t);
  }
}

/** Every value of a header, across lines and, for list headers, across commas. */
export function getHeaderValues(msg: SipMessage, name: string): string[] {
  const key = headerKey(name);
  const list = listHeaders.has(key);
  const out: string[] = [];
  for (const h of msg.headers) {
    if (headerKey(h.name) !== key) continue;
    if (list) out.push(...splitHeaderValues(h.value));
    else out.push(h.value);
  }
  return out;
}

/** The first value of a header (the first element of a list header), or undefined. */
export function getHeader(msg: SipMessage, name: string): string | undefined {
  const key = headerKey(name);
  for (const h of msg.headers) {
    if (headerKey(h.name) !== key) continue;
    if (!listHeaders.has(key)) return h.value;
    const first = splitHeaderValues(h.value)[0];
    if (first !== undefined) return first;
  }
  return undefined;
}

export function hasHeader(msg: SipMessage, name: string): boolean {
  const key = headerKey(name);
  return msg.headers.some((h) => headerKey(h.name) === key);
}

/** Header lines (name as received) with that name, in order. */
export function getHeaderLines(msg: SipMessage, name: string): SipHeader[] {
  const key = headerKey(name);
  return msg.headers.filter((h) => headerKey(h.name) === key);
}

/** Refuses names that are not tokens and values that would break the framing (header injection). */
export function assertHeaderSafe(name: string, value: string): void {
  if (!isToken(name)) {
    throw new SipParseError(SipErrorCode.badHeader, `header name ${JSON.stringify(name)} is not a token`, {
      field: name,
    });
  }
  if (hasControlChar(value)) {
    throw new SipParseError(SipErrorCode.badHeader, `${name}: value contains a control character`, {
      field: name,
    });
  }
}

/** Appends a header line. */
export function addHeader(msg: SipMessage, name: string, value: string): void {
  assertHeaderSafe(name, value);
  msg.headers.push({ name, value });
}

/** Replaces every line of that header with one line, where the first one was (or at the end). */
export function setHeader(msg: SipMessage, name: string, value: string): void {
  assertHeaderSafe(name, value);
  const key = headerKey(name);
  const at = msg.headers.findIndex((h) => headerKey(h.name) === key);
  removeHeader(msg, name);
  if (at === -1) msg.headers.push({ name, value });
  else msg.headers.splice(at, 0, { name, value });
}

/** Removes every line of that header; returns how many were removed. */
export function removeHeader(msg: SipMessage, name: string): number {
  const key = headerKey(name);
  let removed = 0;
  for (let i = msg.headers.length - 1; i >= 0; i--) {
    if (headerKey(msg.headers[i]!.name) !== key) continue;
    msg.headers.splice(i, 1);
    removed++;
  }
  return removed;
}

/** Inserts a value above every existing value of the header: a new line before the first one, or at the top. */
export function prependHeaderValue(msg: SipMessage, name: string, value: string): void {
  assertHeaderSafe(name, value);
  const key = headerKey(name);
  const at = msg.headers.findIndex((h) => headerKey(h.name) === key);
  msg.headers.splice(at === -1 ? 0 : at, 0, { name, value });
}

/**
 * Removes the topmost value of a list header, rewriting its line when it held several
 * (`Via: a, b` becomes `Via: b`); returns the removed value.
 */
export function removeFirstHeaderValue(msg: SipMessage, name: string): string | undefined {
  const key = headerKey(name);
  for (let i = 0; i < msg.headers.length; i++) {
    const h = msg.headers[i]!;
    if (headerKey(h.name) !== key) continue;
    const values = splitHeaderValues(h.value);
    if (values.length > 1) {
      msg.headers[i] = { name: h.name, value: values.slice(1).join(', ') };
      return values[0];
    }
    msg.headers.splice(i, 1);
    if (values.length === 1) return values[0];
    i--; // an empty line held no value: drop it and look further
  }
  return undefined;
}
