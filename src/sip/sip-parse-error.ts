import type { SipMessage } from './sip-message.ts';

/**
 * Stable codes callers match on. `status` is the SIP response a request that failed this way should get
 * (only when the error carries the request head, see `SipParseError.head`); `undefined` means drop.
 */
export const SipErrorCode = {
  tooLarge: 'SIP_TOO_LARGE',
  bodyTooLarge: 'SIP_BODY_TOO_LARGE',
  tooManyHeaders: 'SIP_TOO_MANY_HEADERS',
  lineTooLong: 'SIP_LINE_TOO_LONG',
  badStartLine: 'SIP_BAD_START_LINE',
  badVersion: 'SIP_BAD_VERSION',
  badHeader: 'SIP_BAD_HEADER',
  badContentLength: 'SIP_BAD_CONTENT_LENGTH',
  missingHeader: 'SIP_MISSING_HEADER',
  duplicateHeader: 'SIP_DUPLICATE_HEADER',
  truncated: 'SIP_TRUNCATED',
  empty: 'SIP_EMPTY',
  badUri: 'SIP_BAD_URI',
  badVia: 'SIP_BAD_VIA',
  badNameAddr: 'SIP_BAD_NAME_ADDR',
  badCSeq: 'SIP_BAD_CSEQ',
  cseqMismatch: 'SIP_CSEQ_MISMATCH',
  badMaxForwards: 'SIP_BAD_MAX_FORWARDS',
} as const;
export type SipErrorCode = (typeof SipErrorCode)[keyof typeof SipErrorCode];

const statusByCode: Record<SipErrorCode, number | undefined> = {
  SIP_TOO_LARGE: 513, // RFC 3261 §21.5.7 Message Too Large
  SIP_BODY_TOO_LARGE: 413, // RFC 3261 §21.4.11 Request Entity Too Large
  SIP_TOO_MANY_HEADERS: 513,
  SIP_LINE_TOO_LONG: 513,
  SIP_BAD_START_LINE: 400,
  SIP_BAD_VERSION: 505, // RFC 3261 §21.5.6 Version Not Supported
  SIP_BAD_HEADER: 400,
  SIP_BAD_CONTENT_LENGTH: 400,
  SIP_MISSING_HEADER: 400,
  SIP_DUPLICATE_HEADER: 400,
  SIP_TRUNCATED: 400, // RFC 3261 §18.3: body shorter than Content-Length
  SIP_EMPTY: undefined,
  SIP_BAD_URI: 400,
  SIP_BAD_VIA: 400,
  SIP_BAD_NAME_ADDR: 400,
  SIP_BAD_CSEQ: 400,
  SIP_CSEQ_MISMATCH: 400,
  SIP_BAD_MAX_FORWARDS: 400,
};

/** The SIP status an error code maps to, if a request failing that way should be answered. */
export function sipStatusFor(code: SipErrorCode): number | undefined {
  return statusByCode[code];
}

/** Every failure of the SIP codec. The message names the offending field. */
export class SipParseError extends Error {
  readonly code: SipErrorCode;
  /** SIP status to answer a request with; never answer a response (RFC 3261 §18.3). */
  readonly status: number | undefined;
  /** The header name, `start-line`, `body` or `message` the error is about. */
  readonly field: string | undefined;
  /**
   * The message head (start line and the headers that parsed), when the whole head was read: lets the
   * transport build a response (`buildResponse`) before dropping the message or closing the stream.
   */
  head: SipMessage | undefined;

  constructor(
    code: SipErrorCode,
    message: string,
    opts: { field?: string; head?: SipMessage; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SipParseError';
    this.code = code;
    this.status = statusByCode[code];
    this.field = opts.field;
    this.head = opts.head;
  }
}
