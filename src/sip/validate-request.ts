import { parseCSeq, type CSeq } from './cseq.ts';
import { getMaxForwards } from './message-mutations.ts';
import { parseNameAddr, type NameAddr } from './name-addr.ts';
import { getHeaderLines, getHeaderValues } from './sip-headers.ts';
import type { SipMessage, SipRequest, SipResponse } from './sip-message.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';
import { parseSipUri } from './sip-uri.ts';
import { parseVia, type Via } from './via.ts';

/** The headers every request and response must carry, parsed once so callers need not parse them again. */
export interface MessageEssentials {
  callId: string;
  cseq: CSeq;
  from: NameAddr;
  to: NameAddr;
  /** Every Via value, topmost first. */
  vias: Via[];
  /** Undefined when absent (and always for responses). */
  maxForwards: number | undefined;
}

/**
 * Checks what RFC 3261 §8.1.1 makes mandatory and §16.3 has a proxy verify: exactly one To, From, CSeq
 * and Call-ID, at least one Via, all well formed; the CSeq method equals the request method; a sip:/sips:
 * Request-URI parses; Max-Forwards, optional here because a proxy adds it (§16.6 step 3), is 0-255 when
 * present. Throws SipParseError (status 400) naming the header, with `head` set so the caller can answer.
 */
export function validateRequest(req: SipRequest): MessageEssentials {
  return withHead(req, () => {
    const essentials = common(req);
    if (essentials.cseq.method !== req.method) {
      throw new SipParseError(
        SipErrorCode.cseqMismatch,
        `CSeq method ${essentials.cseq.method} does not match the request method ${req.method}`,
        { field: 'CSeq' },
      );
    }
    if (/^sips?:/i.test(req.uri)) parseSipUri(req.uri);
    essentials.maxForwards = getMaxForwards(req);
    return essentials;
  });
}

/** The same checks for a response, which a proxy needs before routing it by its Via (RFC 3261 §16.7). */
export function validateResponse(res: SipResponse): MessageEssentials {
  return withHead(res, () => common(res));
}

function common(msg: SipMessage): MessageEssentials {
  const callId = single(msg, 'Call-ID');
  if (!/^\S+$/.test(callId)) {
    throw new SipParseError(SipErrorCode.badHeader, 'Call-ID must be one word without spaces', {
      field: 'Call-ID',
    });
  }
  const cseq = parseCSeq(single(msg, 'CSeq'));
  const from = parseNameAddr(single(msg, 'From'), 'From');
  const to = parseNameAddr(single(msg, 'To'), 'To');
  const viaValues = getHeaderValues(msg, 'Via');
  if (viaValues.length === 0) throw missing('Via');
  return { callId, cseq, from, to, vias: viaValues.map(parseVia), maxForwards: undefined };
}

function single(msg: SipMessage, name: string): string {
  const lines = getHeaderLines(msg, name);
  if (lines.length === 0) throw missing(name);
  if (lines.length > 1) {
    throw new SipParseError(SipErrorCode.duplicateHeader, `${name} appears ${lines.length} times`, {
      field: name,
    });
  }
  return lines[0]!.value;
}

function missing(name: string): SipParseError {
  return new SipParseError(SipErrorCode.missingHeader, `${name} is missing`, { field: name });
}

function withHead<T>(msg: SipMessage, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof SipParseError) err.head ??= msg;
    throw err;
  }
}
