import { parseNameAddr } from './name-addr.ts';
import { reasonPhrase } from './reason-phrase.ts';
import { assertHeaderSafe, headerKey } from './sip-headers.ts';
import {
  emptyBody,
  SipMessageKind,
  SIP_VERSION,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from './sip-message.ts';
import { newTag } from './sip-ids.ts';
import { SipParseError } from './sip-parse-error.ts';

export interface ResponseOptions {
  /** Defaults to the standard phrase for the status. */
  reason?: string;
  /** The To-tag to add when the request's To has none; a random one by default. */
  toTag?: string;
  /** Seconds, for 503 and 486 (RFC 3261 §20.33, §21.5.4). */
  retryAfter?: number;
  /** Contact values, e.g. where a 302 sends the caller (RFC 3261 §21.3.3). */
  contact?: string | string[];
  /** More header lines, appended after the copied ones. */
  headers?: SipHeader[];
  body?: Buffer;
}

const copied = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

/**
 * A response to `req` (RFC 3261 §8.2.6): Via (all, in order), From, To, Call-ID and CSeq copied; a To-tag
 * added when missing, except on 100 Trying (§8.2.6.2); Timestamp echoed on 100 (§8.2.6.1).
 * Content-Length is written by `serializeMessage`. Works on a head from a SipParseError, so a malformed
 * request can still be answered: a To that does not parse is copied as it is.
 */
export function buildResponse(req: SipRequest, status: number, opts: ResponseOptions = {}): SipResponse {
  if (!Number.isInteger(status) || status < 100 || status > 699) {
    throw new RangeError(`SIP status ${status} is not 100-699`);
  }
  const headers: SipHeader[] = [];
  for (const h of req.headers) {
    const key = headerKey(h.name);
    if (copied.has(key) || (status === 100 && key === 'timestamp'))
      headers.push({ name: h.name, value: h.value });
  }
  if (status > 100) {
    const to = headers.find((h) => headerKey(h.name) === 'to');
    if (to && !hasTag(to.value)) to.value += `;tag=${opts.toTag ?? newTag()}`;
  }
  const extra: SipHeader[] = [];
  if (opts.retryAfter !== undefined)
    extra.push({ name: 'Retry-After', value: String(Math.max(0, Math.trunc(opts.retryAfter))) });
  const contacts =
    opts.contact === undefined ? [] : Array.isArray(opts.contact) ? opts.contact : [opts.contact];
  for (const c of contacts) extra.push({ name: 'Contact', value: c });
  extra.push(...(opts.headers ?? []));
  for (const h of extra) assertHeaderSafe(h.name, h.value);
  return {
    kind: SipMessageKind.response,
    version: SIP_VERSION,
    status,
    reason: opts.reason ?? reasonPhrase(status),
    headers: [...headers, ...extra],
    body: opts.body ?? emptyBody,
  };
}

function hasTag(to: string): boolean {
  try {
    return parseNameAddr(to, 'To').params.has('tag');
  } catch (err) {
    if (err instanceof SipParseError) return true; // unparsable: copy it untouched
    throw err;
  }
}
