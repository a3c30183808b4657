import { hasControlChar, isToken } from './sip-chars.ts';
import { headerKey } from './sip-headers.ts';
import type { SipLimits } from './sip-limits.ts';
import { emptyBody, SipMessageKind, type SipHeader, type SipMessage } from './sip-message.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';
import { parseStartLine, type StartLine } from './start-line.ts';

const LF = 0x0a;
const CR = 0x0d;

/** The parts of a message head that framing needs, once the blank line has been read. */
export interface ReadHead {
  message: SipMessage;
  /** Bytes from the start line through the blank line. */
  bytes: number;
  /** `undefined` when there is no Content-Length header. */
  contentLength: number | undefined;
}

/**
 * Reads one message head (start line, headers, blank line) from chunks of any size, enforcing the limits
 * as bytes arrive: it holds at most one partial line (≤ maxLineLength), never the whole head twice.
 * Size limits and a bad start line throw at once; a malformed header line is remembered and thrown with
 * the finished head, so the transport can still answer 400 with the request's Via, From, To...
 * Leading CRLFs must be skipped by the caller.
 */
export class HeadReader {
  readonly #limits: SipLimits;
  #parts: Buffer[] = [];
  #partLength = 0;
  #bytes = 0;
  #startLine: StartLine | undefined;
  #headers: SipHeader[] = [];
  #pending: string | undefined;
  #headerCount = 0;
  #error: SipParseError | undefined;
  #complete = false;

  constructor(limits: SipLimits) {
    this.#limits = limits;
  }

  get complete(): boolean {
    return this.#complete;
  }

  /** Bytes of a partial line held between chunks. */
  get buffered(): number {
    return this.#partLength;
  }

  /** Consumes bytes from `start` until the head is complete or `buf` ends; returns where it stopped. */
  feed(buf: Buffer, start: number): number {
    const limits = this.#limits;
    let i = start;
    while (i < buf.length && !this.#complete) {
      const lf = buf.indexOf(LF, i);
      const stop = lf === -1 ? buf.length : lf;
      const take = stop - i;
      const consumed = lf === -1 ? take : take + 1;
      // Whichever limit an earlier byte breaks is reported, so the error does not depend on chunking.
      // +1 on the line: until its LF arrives, a line may end with the CR of its CRLF.
      const sizeRoom = limits.maxMessageSize - this.#bytes;
      const lineRoom = limits.maxLineLength + 1 - this.#partLength;
      if (consumed > sizeRoom && (take <= lineRoom || sizeRoom <= lineRoom)) {
        throw new SipParseError(
          SipErrorCode.tooLarge,
          `message head exceeds ${limits.maxMessageSize} bytes`,
          {
            field: 'message',
          },
        );
      }
      if (take > lineRoom) throw this.#lineTooLong();
      this.#bytes += consumed;
      if (lf === -1) {
        // Copied: keeps only the partial line alive, not the caller's whole chunk.
        this.#parts.push(Buffer.from(buf.subarray(i)));
        this.#partLength += take;
        return buf.length;
      }
      let line =
        this.#partLength === 0 ? buf.subarray(i, lf) : Buffer.concat([...this.#parts, buf.subarray(i, lf)]);
      this.#parts = [];
      this.#partLength = 0;
      // RFC 3261 §7 wants CRLF; a bare LF is accepted as most stacks do (robustness principle).
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > limits.maxLineLength) throw this.#lineTooLong();
      i = lf + 1;
      this.#line(line.toString('utf8'));
    }
    return i;
  }

  /** The finished head; throws the first malformed-header or Content-Length error with the head attached. */
  finish(): ReadHead {
    if (!this.#complete || this.#startLine === undefined) {
      throw new SipParseError(
        SipErrorCode.truncated,
        'message ends before the blank line that closes its head',
        {
          field: 'message',
        },
      );
    }
    const sl = this.#startLine;
    const message: SipMessage =
      sl.kind === SipMessageKind.request
        ? {
            kind: sl.kind,
            method: sl.method,
            uri: sl.uri,
            version: sl.version,
            headers: this.#headers,
            body: emptyBody,
          }
        : {
            kind: sl.kind,
            status: sl.status,
            reason: sl.reason,
            version: sl.version,
            headers: this.#headers,
            body: emptyBody,
          };
    if (this.#error) {
      this.#error.head = message;
      throw this.#error;
    }
    return { message, bytes: this.#bytes, contentLength: readContentLength(message) };
  }

  #line(text: string): void {
    if (this.#startLine === undefined) {
      if (hasControlChar(text)) {
        throw new SipParseError(SipErrorCode.badStartLine, 'start line contains a control character', {
          field: 'start-line',
        });
      }
      this.#startLine = parseStartLine(text);
      return;
    }
    if (text === '') {
      this.#flush();
      this.#complete = true;
      return;
    }
    if (hasControlChar(text)) {
      this.#record('header line contains a control character');
      return;
    }
    if (text[0] === ' ' || text[0] === '\t') {
      if (this.#pending === undefined) {
        this.#record('continuation line without a header to continue');
        return;
      }
      // RFC 3261 §7.3.1: a line fold is equivalent to a single SP.
      this.#pending = `${this.#pending.trimEnd()} ${text.trim()}`;
      if (this.#pending.length > this.#limits.maxLineLength) throw this.#lineTooLong();
      return;
    }
    this.#flush();
    if (++this.#headerCount > this.#limits.maxHeaders) {
      throw new SipParseError(
        SipErrorCode.tooManyHeaders,
        `more than ${this.#limits.maxHeaders} header lines`,
        {
          field: 'message',
        },
      );
    }
    this.#pending = text;
  }

  #flush(): void {
    const raw = this.#pending;
    if (raw === undefined) return;
    this.#pending = undefined;
    const colon = raw.indexOf(':');
    // HCOLON = *( SP / HTAB ) ":" SWS (RFC 3261 §25.1)
    const name = colon === -1 ? '' : raw.slice(0, colon).replace(/[ \t]+$/, '');
    if (!isToken(name)) {
      this.#record(`header line ${JSON.stringify(raw.slice(0, 60))} is not "Name: value"`);
      return;
    }
    this.#headers.push({ name, value: raw.slice(colon + 1).trim() });
  }

  #record(message: string): void {
    this.#error ??= new SipParseError(SipErrorCode.badHeader, message, { field: 'header' });
  }

  #lineTooLong(): SipParseError {
    return new SipParseError(SipErrorCode.lineTooLong, `a line exceeds ${this.#limits.maxLineLength} bytes`, {
      field: 'message',
    });
  }
}

/**
 * The Content-Length, if any. Several Content-Length headers must agree: framing two ways is how
 * request smuggling starts.
 */
export function readContentLength(message: SipMessage): number | undefined {
  let found: number | undefined;
  for (const h of message.headers) {
    if (headerKey(h.name) !== 'content-length') continue;
    if (!/^\d+$/.test(h.value)) {
      throw new SipParseError(
        SipErrorCode.badContentLength,
        `Content-Length ${JSON.stringify(h.value.slice(0, 40))} is not a number`,
        {
          field: 'Content-Length',
          head: message,
        },
      );
    }
    const n = h.value.length > 15 ? Number.POSITIVE_INFINITY : Number(h.value);
    if (found !== undefined && found !== n) {
      throw new SipParseError(SipErrorCode.badContentLength, 'Content-Length headers disagree', {
        field: 'Content-Length',
        head: message,
      });
    }
    found = n;
  }
  return found;
}

/** Checks a body length against the limits before any of the body is buffered. */
export function checkBodySize(head: ReadHead, bodyLength: number, limits: SipLimits): void {
  if (bodyLength > limits.maxBodySize) {
    throw new SipParseError(
      SipErrorCode.bodyTooLarge,
      `body of ${bodyLength} bytes exceeds ${limits.maxBodySize}`,
      {
        field: 'body',
        head: head.message,
      },
    );
  }
  if (head.bytes + bodyLength > limits.maxMessageSize) {
    throw new SipParseError(
      SipErrorCode.tooLarge,
      `message of ${head.bytes + bodyLength} bytes exceeds ${limits.maxMessageSize}`,
      {
        field: 'message',
        head: head.message,
      },
    );
  }
}
