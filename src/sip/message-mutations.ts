import { formatNameAddr, type NameAddr } from './name-addr.ts';
import {
  getHeader,
  getHeaderLines,
  prependHeaderValue,
  removeFirstHeaderValue,
  setHeader,
} from './sip-headers.ts';
import type { SipMessage, SipRequest } from './sip-message.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';
import { formatSipUri, isAbsoluteUri, type SipUri } from './sip-uri.ts';
import { formatVia, parseVia, type Via } from './via.ts';

/** The topmost Via, parsed; undefined when there is none. */
export function topVia(msg: SipMessage): Via | undefined {
  const v = getHeader(msg, 'Via');
  return v === undefined ? undefined : parseVia(v);
}

/** A proxy adds its Via above all others before forwarding a request (RFC 3261 §16.6 step 8). */
export function prependVia(msg: SipMessage, via: Via | string): void {
  prependHeaderValue(msg, 'Via', typeof via === 'string' ? via : formatVia(via));
}

/** A proxy removes its own Via from a response before forwarding it (RFC 3261 §16.7 step 3). */
export function removeTopVia(msg: SipMessage): string | undefined {
  return removeFirstHeaderValue(msg, 'Via');
}

/** Record-Route goes above existing values so the dialog's route set reads in order (RFC 3261 §16.6 step 4). */
export function addRecordRoute(msg: SipMessage, value: NameAddr | string): void {
  prependHeaderValue(msg, 'Record-Route', typeof value === 'string' ? value : formatNameAddr(value));
}

/** Adds a Route above existing ones (loose routing towards a next hop, RFC 3261 §16.6 step 6). */
export function prependRoute(msg: SipMessage, value: NameAddr | string): void {
  prependHeaderValue(msg, 'Route', typeof value === 'string' ? value : formatNameAddr(value));
}

/** A proxy removes the Route that named itself (RFC 3261 §16.4). */
export function removeTopRoute(msg: SipMessage): string | undefined {
  return removeFirstHeaderValue(msg, 'Route');
}

export function setRequestUri(req: SipRequest, uri: SipUri | string): void {
  const s = typeof uri === 'string' ? uri : formatSipUri(uri);
  if (!isAbsoluteUri(s)) {
    throw new SipParseError(
      SipErrorCode.badUri,
      `Request-URI ${JSON.stringify(s.slice(0, 100))} is not an absolute URI`,
      {
        field: 'uri',
      },
    );
  }
  req.uri = s;
}

/** Max-Forwards (0-255, RFC 3261 §20.22) or undefined when absent; throws when present but malformed or repeated. */
export function getMaxForwards(msg: SipMessage): number | undefined {
  const lines = getHeaderLines(msg, 'Max-Forwards');
  if (lines.length === 0) return undefined;
  const v = lines[0]!.value;
  if (lines.length > 1 || !/^\d{1,3}$/.test(v) || Number(v) > 255) {
    throw new SipParseError(
      SipErrorCode.badMaxForwards,
      `Max-Forwards ${JSON.stringify(v.slice(0, 20))} is not 0-255`,
      {
        field: 'Max-Forwards',
      },
    );
  }
  return Number(v);
}

/**
 * RFC 3261 §16.6 step 3: decrement, or add 70 when absent. A request that arrived with 0 must already
 * have been answered 483 (§16.3 step 3); it stays at 0. Returns the new value.
 */
export function decrementMaxForwards(req: SipRequest): number {
  const current = getMaxForwards(req);
  const next = current === undefined ? 70 : Math.max(0, current - 1);
  setHeader(req, 'Max-Forwards', String(next));
  return next;
}
