import { assertHeaderSafe, headerKey } from './sip-headers.ts';
import { hasControlChar, isToken } from './sip-chars.ts';
import { SipMessageKind, SIP_VERSION, type SipMessage } from './sip-message.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';
import { isAbsoluteUri } from './sip-uri.ts';

/**
 * The message as bytes. Content-Length is always written from the body (the first Content-Length line
 * keeps its place and name, later ones are dropped; one is appended if there was none), so a proxy that
 * changed the body cannot frame it wrong. Throws SipParseError on values that would break framing.
 */
export function serializeMessage(msg: SipMessage): Buffer {
  let head: string;
  if (msg.kind === SipMessageKind.request) {
    if (!isToken(msg.method) || !isAbsoluteUri(msg.uri)) {
      throw new SipParseError(SipErrorCode.badStartLine, 'request has a bad method or Request-URI', {
        field: 'start-line',
      });
    }
    head = `${msg.method} ${msg.uri} ${SIP_VERSION}\r\n`;
  } else {
    if (!Number.isInteger(msg.status) || msg.status < 100 || msg.status > 699 || hasControlChar(msg.reason)) {
      throw new SipParseError(SipErrorCode.badStartLine, 'response has a bad status or reason', {
        field: 'start-line',
      });
    }
    head = `${SIP_VERSION} ${msg.status} ${msg.reason}\r\n`;
  }
  let sawLength = false;
  for (const h of msg.headers) {
    assertHeaderSafe(h.name, h.value);
    if (headerKey(h.name) === 'content-length') {
      if (sawLength) continue;
      sawLength = true;
      head += `${h.name}: ${msg.body.length}\r\n`;
    } else {
      head += `${h.name}: ${h.value}\r\n`;
    }
  }
  if (!sawLength) head += `Content-Length: ${msg.body.length}\r\n`;
  head += '\r\n';
  return msg.body.length === 0
    ? Buffer.from(head, 'utf8')
    : Buffer.concat([Buffer.from(head, 'utf8'), msg.body]);
}
