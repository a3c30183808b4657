import { checkBodySize, HeadReader } from './head-reader.ts';
import { resolveSipLimits, type SipLimits } from './sip-limits.ts';
import type { SipMessage } from './sip-message.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';

const isKeepAliveByte = (b: number): boolean =>
  b === 0x0d || b === 0x0a || b === 0x20 || b === 0x09 || b === 0;

/**
 * A datagram that only keeps a NAT binding open (CRLFs, or the NULs some phones send): drop it
 * silently. STUN keep-alives (RFC 5626) start with byte 0x00 or 0x01 and must be told apart before this.
 */
export function isKeepAliveDatagram(buf: Buffer): boolean {
  if (buf.length === 0) return true;
  for (const b of buf) if (!isKeepAliveByte(b)) return false;
  return true;
}

/**
 * One SIP message from one UDP datagram (RFC 3261 §18.3). With Content-Length, bytes beyond the body
 * are discarded and a shorter body is an error (SIP_TRUNCATED: answer a request 400, drop a response);
 * without it, the body is the rest of the datagram. Throws only SipParseError.
 */
export function parseDatagram(buf: Buffer, limits?: Partial<SipLimits>): SipMessage {
  const l = resolveSipLimits(limits);
  let start = 0;
  // Leading CRLFs are ignored before a start line (RFC 3261 §7.5).
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  if (start === buf.length) {
    throw new SipParseError(SipErrorCode.empty, 'datagram holds no SIP message', { field: 'message' });
  }
  const reader = new HeadReader(l);
  const end = reader.feed(buf, start);
  const head = reader.finish();
  const available = buf.length - end;
  const length = head.contentLength ?? available;
  checkBodySize(head, length, l);
  if (length > available) {
    throw new SipParseError(
      SipErrorCode.truncated,
      `body has ${available} bytes, Content-Length says ${length}`,
      {
        field: 'Content-Length',
        head: head.message,
      },
    );
  }
  head.message.body = Buffer.from(buf.subarray(end, end + length));
  return head.message;
}
