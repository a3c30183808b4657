import { constants as h2, type Http2Session } from 'node:http2';

interface SessionState {
  streams: number;
  goingAway: boolean;
}

/** RFC 9113 §6.8: the largest stream identifier, for the first GOAWAY of a graceful shutdown. */
const maxStreamId = 2 ** 31 - 1;
/** How long the second GOAWAY waits for the PING answer (about one round trip) at most. */
const goawayStepMs = 1000;

/**
 * The HTTP/2 sessions open on a front end and how many streams each carries. While the front end
 * refuses, each session gets the two-step GOAWAY of RFC 9113 §6.8: a notice with the largest stream id
 * (streams the client is sending now are still taken), then, one round trip later (a PING), the final
 * GOAWAY with the last stream processed; open streams finish and the session closes after the last one.
 * A GOAWAY cannot be taken back: sessions told to go stay going after a resume; their clients open new
 * connections, which land here again.
 */
export class Http2Sessions {
  readonly #all = new Map<Http2Session, SessionState>();
  readonly #onChange: () => void;
  readonly #idleTimeoutMs: number;
  #idle = 0;
  #draining = false;

  constructor(onChange: () => void, idleTimeoutMs: number) {
    this.#onChange = onChange;
    this.#idleTimeoutMs = idleTimeoutMs;
  }

  get size(): number {
    return this.#all.size;
  }

  /** Sessions with no open stream (a gauge beside the idle HTTP/1.1 connections). */
  get idle(): number {
    return this.#idle;
  }

  add(session: Http2Session): void {
    const state: SessionState = { streams: 0, goingAway: false };
    this.#all.set(session, state);
    this.#idle++;
    session.on('error', () => session.destroy());
    // Idle sessions go after the keep-alive timeout, as idle HTTP/1.1 connections do.
    session.setTimeout(this.#idleTimeoutMs, () => {
      if (state.streams === 0) session.close();
    });
    session.once('close', () => {
      this.#all.delete(session);
      if (state.streams === 0) this.#idle--;
      this.#onChange();
    });
    if (this.#draining) goAway(session, state);
    this.#onChange();
  }

  streamOpened(session: Http2Session): void {
    const state = this.#all.get(session);
    if (state && state.streams++ === 0) this.#idle--;
  }

  streamClosed(session: Http2Session): void {
    const state = this.#all.get(session);
    if (state && --state.streams === 0) this.#idle++;
  }

  drain(on: boolean): void {
    this.#draining = on;
    if (on) for (const [session, state] of this.#all) goAway(session, state);
  }

  destroyAll(): void {
    for (const session of this.#all.keys()) session.destroy();
  }
}

function goAway(session: Http2Session, state: SessionState): void {
  if (state.goingAway || session.closed || session.destroyed) return;
  state.goingAway = true;
  session.goaway(h2.NGHTTP2_NO_ERROR, maxStreamId);
  let done = false;
  const second = () => {
    if (done) return;
    done = true;
    // Sends the final GOAWAY (last stream processed) and closes once the open streams have ended.
    if (!session.closed && !session.destroyed) session.close();
  };
  if (!session.ping(() => second())) second();
  setTimeout(second, goawayStepMs).unref();
}
