/**
 * Where a WebSocket byte stream is (RFC 6455 §5.2), so a close frame can be put in between two frames
 * and never inside one. It reads frame heads and skips payloads by their length; it never copies, never
 * unmasks and never touches a socket.
 *
 * ```
 *            2 bytes read      extended length and mask key read
 *   head ─────────────────▶ (head) ─────────────────────────────▶ payload ──(length skipped)──▶ head
 *     │   length 0 ─────────────────────────────────────────────────────────────────────────▶ head
 *     └── a 64-bit length with its top bit set (RFC 6455 §5.2), or beyond 2^53 ───────────▶ broken
 * ```
 *
 * `broken` is final: the stream is passed on as it is, but no frame can be inserted any more.
 */
export const FrameTrackerState = {
  head: 'head',
  payload: 'payload',
  broken: 'broken',
} as const;
export type FrameTrackerState = (typeof FrameTrackerState)[keyof typeof FrameTrackerState];

/** RFC 6455 §5.5.1. */
const closeOpcode = 0x8;

export class WebSocketFrameTracker {
  #state: FrameTrackerState = FrameTrackerState.head;
  /** Head bytes read of the current frame, and how many it has (2 to 14). */
  #headRead = 0;
  #headLength = 2;
  #opcode = 0;
  /** Where the (extended) length ends and the mask key, if any, begins. */
  #lengthEnd = 2;
  /** The 7-bit length, or the extended length as it is read. */
  #length = 0;
  #remaining = 0;
  #closeFrames = 0;

  get state(): FrameTrackerState {
    return this.#state;
  }

  /** Between two frames: a frame written now would be a whole frame to the reader. */
  get atBoundary(): boolean {
    return this.#state === FrameTrackerState.head && this.#headRead === 0;
  }

  /** Close frames (opcode 8) whose head has been read so far. */
  get closeFrames(): number {
    return this.#closeFrames;
  }

  /**
   * Reads `chunk`; returns how many bytes of it were read. With `stopAtBoundary`, stops at the first frame
   * boundary (0 when it is at one already), so the caller can pass on that much and insert a frame there;
   * otherwise reads it all.
   */
  feed(chunk: Uint8Array, stopAtBoundary = false): number {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (stopAtBoundary && this.atBoundary) return i;
      if (this.#state === FrameTrackerState.payload) {
        const take = Math.min(this.#remaining, n - i);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#transition(FrameTrackerState.head);
        continue;
      }
      if (this.#state === FrameTrackerState.broken) return n;
      this.#readHeadByte(chunk[i]!);
      i++;
    }
    return n;
  }

  #readHeadByte(byte: number): void {
    const at = this.#headRead++;
    if (at === 0) {
      this.#opcode = byte & 0x0f;
      return;
    }
    if (at === 1) {
      const length7 = byte & 0x7f;
      const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
      this.#length = extended === 0 ? length7 : 0;
      this.#lengthEnd = 2 + extended;
      this.#headLength = this.#lengthEnd + ((byte & 0x80) !== 0 ? 4 : 0);
    } else if (at < this.#lengthEnd) {
      // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
      if (at === 2 && this.#lengthEnd === 10 && (byte & 0x80) !== 0) {
        this.#transition(FrameTrackerState.broken);
        return;
      }
      this.#length = this.#length * 256 + byte;
      if (this.#length > Number.MAX_SAFE_INTEGER) {
        this.#transition(FrameTrackerState.broken);
        return;
      }
    }
    if (this.#headRead < this.#headLength) return;
    if (this.#opcode === closeOpcode) this.#closeFrames++;
    if (this.#length === 0) this.#transition(FrameTrackerState.head);
    else {
      this.#remaining = this.#length;
      this.#transition(FrameTrackerState.payload);
    }
  }

  /** The one place the state changes. */
  #transition(to: FrameTrackerState): void {
    if (this.#state === FrameTrackerState.broken) return;
    this.#state = to;
    if (to === FrameTrackerState.head) {
      this.#headRead = 0;
      this.#headLength = 2;
    }
  }
}
