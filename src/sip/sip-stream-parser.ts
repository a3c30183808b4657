import { checkBodySize, HeadReader, type ReadHead } from './head-reader.ts';
import { resolveSipLimits, type SipLimits } from './sip-limits.ts';
import type { SipMessage } from './sip-message.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';

/** Where the parser gives what it found. Calls happen synchronously inside `push()`; they must not throw. */
export interface SipStreamSink {
  onMessage(message: SipMessage): void;
  /** Called once; the parser then ignores further input and the transport closes the connection. */
  onError(error: SipParseError): void;
  /** A double-CRLF ping (RFC 5626 §3.5.1): answer it with a single CRLF pong. */
  onKeepAlive?(): void;
}

/**
 * ```
 *  idle ──first byte not CR/LF──▶ head ──blank line──▶ body ──Content-Length bytes──▶ idle (message out)
 *  idle ──CRLF CRLF: ping──▶ idle     head ──blank line, Content-Length: 0──▶ idle (message out)
 *  idle / head / body ──parse or limit error──▶ failed (terminal: the transport closes the connection)
 * ```
 */
export const SipStreamState = { idle: 'idle', head: 'head', body: 'body', failed: 'failed' } as const;
export type SipStreamState = (typeof SipStreamState)[keyof typeof SipStreamState];

const allowed: Record<SipStreamState, readonly SipStreamState[]> = {
  idle: [SipStreamState.head, SipStreamState.failed],
  head: [SipStreamState.idle, SipStreamState.body, SipStreamState.failed],
  body: [SipStreamState.idle, SipStreamState.failed],
  failed: [],
};

const LF = 0x0a;
const CR = 0x0d;

/**
 * Frames SIP messages on a stream transport (TCP, TLS) from chunks split anywhere. Content-Length is
 * mandatory (RFC 3261 §18.3): without it the end of the message is unknowable, so its absence is an error.
 * Any error is fatal: once framing is in doubt nothing later on the connection can be trusted, so the
 * transport closes it. Memory held is bounded by the limits whatever the chunking.
 */
export class SipStreamParser {
  readonly #sink: SipStreamSink;
  readonly #limits: SipLimits;
  #state: SipStreamState = SipStreamState.idle;
  #reader: HeadReader | undefined;
  #lineFeeds = 0;
  #message: SipMessage | undefined;
  #bodyParts: Buffer[] = [];
  #bodyRead = 0;
  #bodyLength = 0;

  constructor(sink: SipStreamSink, limits?: Partial<SipLimits>) {
    this.#sink = sink;
    this.#limits = resolveSipLimits(limits);
  }

  get state(): SipStreamState {
    return this.#state;
  }

  /** Bytes held for the message in progress (partial line or body so far). */
  get buffered(): number {
    return (this.#reader?.buffered ?? 0) + this.#bodyRead;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case SipStreamState.idle:
          i = this.#skipIdle(chunk, i);
          break;
        case SipStreamState.head:
          i = this.#readHead(chunk, i);
          break;
        case SipStreamState.body:
          i = this.#readBody(chunk, i);
          break;
        case SipStreamState.failed:
          return;
      }
    }
  }

  /** The peer closed its side: a message cut short is reported (SIP_TRUNCATED). */
  end(): void {
    if (this.#state === SipStreamState.head || this.#state === SipStreamState.body) {
      this.#fail(
        new SipParseError(SipErrorCode.truncated, 'stream ended inside a message', { field: 'message' }),
      );
    }
  }

  // RFC 3261 §7.5: CRLFs before a start line are ignored; RFC 5626 §3.5.1: CRLFCRLF is a ping.
  #skipIdle(chunk: Buffer, start: number): number {
    let i = start;
    while (i < chunk.length) {
      const b = chunk[i];
      if (b === LF) {
        i++;
        if (++this.#lineFeeds === 2) {
          this.#lineFeeds = 0;
          this.#sink.onKeepAlive?.();
        }
      } else if (b === CR) {
        i++;
      } else {
        this.#lineFeeds = 0;
        this.#reader = new HeadReader(this.#limits);
        this.#transition(SipStreamState.head);
        return i;
      }
    }
    return i;
  }

  #readHead(chunk: Buffer, start: number): number {
    const reader = this.#reader as HeadReader;
    let end: number;
    let head: ReadHead;
    try {
      end = reader.feed(chunk, start);
      if (!reader.complete) return end;
      head = reader.finish();
      if (head.contentLength === undefined) {
        throw new SipParseError(
          SipErrorCode.missingHeader,
          'Content-Length is required on stream transports',
          {
            field: 'Content-Length',
            head: head.message,
          },
        );
      }
      checkBodySize(head, head.contentLength, this.#limits);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      this.#fail(err);
      return chunk.length;
    }
    this.#reader = undefined;
    if (head.contentLength === 0) {
      this.#transition(SipStreamState.idle);
      this.#sink.onMessage(head.message);
    } else {
      this.#message = head.message;
      this.#bodyLength = head.contentLength;
      this.#transition(SipStreamState.body);
    }
    return end;
  }

  #readBody(chunk: Buffer, start: number): number {
    const take = Math.min(chunk.length - start, this.#bodyLength - this.#bodyRead);
    this.#bodyParts.push(chunk.subarray(start, start + take));
    this.#bodyRead += take;
    if (this.#bodyRead < this.#bodyLength) return start + take;
    const message = this.#message as SipMessage;
    message.body = Buffer.concat(this.#bodyParts, this.#bodyLength);
    this.#message = undefined;
    this.#bodyParts = [];
    this.#bodyRead = 0;
    this.#transition(SipStreamState.idle);
    this.#sink.onMessage(message);
    return start + take;
  }

  #fail(err: SipParseError): void {
    this.#reader = undefined;
    this.#message = undefined;
    this.#bodyParts = [];
    this.#bodyRead = 0;
    this.#transition(SipStreamState.failed);
    this.#sink.onError(err);
  }

  /** The only place the state changes; an illegal move is a bug in this class. */
  #transition(to: SipStreamState): void {
    if (!allowed[this.#state].includes(to)) {
      throw new Error(`SipStreamParser: illegal transition ${this.#state} -> ${to}`);
    }
    this.#state = to;
  }
}
