import { HEADER_SIZE } from './dns-message.ts';

/** Where the framer delivers what it finds. */
export interface FrameSink {
  message(msg: Buffer): void;
  /** The stream is unusable from here on; the caller closes the connection. */
  error(code: FramingErrorCode): void;
}

export const FramingErrorCode = {
  /** A length prefix below a DNS header's 12 bytes, including 0: nothing sensible can follow. */
  tooShort: 'DNS_TCP_MESSAGE_TOO_SHORT',
} as const;
export type FramingErrorCode = (typeof FramingErrorCode)[keyof typeof FramingErrorCode];

const FramerState = { length: 'length', body: 'body', failed: 'failed' } as const;
type FramerState = (typeof FramerState)[keyof typeof FramerState];

/**
 * Splits a DNS-over-TCP byte stream into messages: each is preceded by its length in two bytes
 * (RFC 1035 §4.2.2), and several may arrive back to back (RFC 7766 §6.2.1.1). Takes arbitrary chunks.
 * The two-byte prefix caps a message at 65535 bytes, so at most one partial message is ever held.
 *
 * ```
 *  length ──(2 bytes, ≥ 12)──▶ body ──(that many bytes)──▶ length
 *     └──────(< 12)──────────▶ failed
 * ```
 */
export class TcpFramer {
  #state: FramerState = FramerState.length;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #need = 2;
  readonly #sink: FrameSink;

  constructor(sink: FrameSink) {
    this.#sink = sink;
  }

  /** Bytes held for an incomplete prefix or message. */
  get buffered(): number {
    return this.#pendingBytes;
  }

  /** True while part of a message has been read but not all of it. */
  get midMessage(): boolean {
    return this.#pendingBytes > 0 || this.#state === FramerState.body;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && this.#state !== FramerState.failed) {
      const take = Math.min(this.#need - this.#pendingBytes, chunk.length - offset);
      let piece: Buffer;
      if (this.#pendingBytes === 0 && take === this.#need) {
        piece = chunk.subarray(offset, offset + take); // the common case: whole in this chunk, no copy
      } else {
        this.#pending.push(chunk.subarray(offset, offset + take));
        this.#pendingBytes += take;
        if (this.#pendingBytes < this.#need) return;
        piece = Buffer.concat(this.#pending, this.#pendingBytes);
        this.#pending = [];
        this.#pendingBytes = 0;
      }
      offset += take;
      this.#transition(piece);
    }
  }

  /** The only place the state changes. */
  #transition(piece: Buffer): void {
    if (this.#state === FramerState.length) {
      const length = piece.readUInt16BE(0);
      if (length < HEADER_SIZE) {
        this.#state = FramerState.failed;
        this.#sink.error(FramingErrorCode.tooShort);
        return;
      }
      this.#state = FramerState.body;
      this.#need = length;
    } else {
      this.#state = FramerState.length;
      this.#need = 2;
      // A message that arrived whole inside a chunk is a view of that chunk; copying is not needed
      // because the handler finishes with it before the next chunk is read.
      this.#sink.message(piece);
    }
  }
}
