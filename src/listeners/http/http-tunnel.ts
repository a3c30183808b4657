import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { closeFrame, WebSocketCloseCode } from './websocket-close-frame.ts';
import { WebSocketFrameTracker } from './websocket-frame-tracker.ts';

/**
 * A tunnel's life (an upgraded WebSocket, another `Upgrade` protocol, or a CONNECT tunnel):
 *
 * ```
 *         end() (deadline, hard stop)
 *   open ───────────────────────────▶ ending ──(both sockets closed)──▶ closed
 *     └──────────────(either side closed it)────────────────────────────▲
 * ```
 */
export const TunnelState = {
  open: 'open',
  ending: 'ending',
  closed: 'closed',
} as const;
export type TunnelState = (typeof TunnelState)[keyof typeof TunnelState];

export interface HttpTunnelOptions {
  /** The client's socket, after the 101 (or CONNECT's 2xx) has been written to it. */
  client: Duplex;
  upstream: Duplex;
  /** Bytes the client sent after its request head, to pass on once the tunnel is up. */
  clientHead: Buffer;
  /** A WebSocket (RFC 6455): frames are tracked so a close frame can be put between two of them. */
  websocket: boolean;
  /** How long `end()` waits for the peers' close answers and FINs before resetting. */
  graceMs: number;
  onClosed: (tunnel: HttpTunnel) => void;
}

/** How one direction of a WebSocket tunnel carries data while it ends. */
const Gate = {
  /** Everything is passed on. */
  open: 0,
  /** Passed on up to the next frame boundary, where the close frame goes in. */
  closing: 1,
  /** The close frame is sent: nothing more is passed on; a close frame coming back ends that side. */
  shut: 2,
} as const;
type Gate = (typeof Gate)[keyof typeof Gate];

interface Direction {
  readonly from: Duplex;
  readonly to: Duplex;
  readonly tracker: WebSocketFrameTracker | null;
  /** What goes in at the boundary: 1012 to the client (SPEC §10), a masked 1001 to the upstream. */
  readonly closeFrame: () => Buffer;
  gate: Gate;
  /** `tracker.closeFrames` when the gate shut: any beyond it is the peer answering our close. */
  closesBefore: number;
}

const closeReason = 'service restart: reconnect';

/**
 * Carries bytes both ways with backpressure, half-closes included, until either side closes. A WebSocket
 * goes on through a pause (SPEC §10); `end()` closes it the way RFC 6455 §7.1.2 and §5.5.1 want: a
 * close frame each way, put between two frames, then a TCP close once the peer answered (or `graceMs`
 * passed). Any other tunnel is ended with a FIN both ways.
 */
export class HttpTunnel {
  readonly websocket: boolean;
  /** Set by the owner when Ebb, not a peer, ended it. */
  forced = false;
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #graceMs: number;
  readonly #down: Direction;
  readonly #up: Direction;
  readonly closed: Promise<void>;
  #state: TunnelState = TunnelState.open;

  constructor(options: HttpTunnelOptions) {
    // Only what it needs is kept: a tunnel lives long, and the client's first bytes may be a slice of a
    // large read buffer.
    this.#client = options.client;
    this.#upstream = options.upstream;
    this.#graceMs = options.graceMs;
    this.websocket = options.websocket;
    const { client, upstream } = options;
    this.#down = {
      from: upstream,
      to: client,
      tracker: options.websocket ? new WebSocketFrameTracker() : null,
      closeFrame: () => closeFrame(WebSocketCloseCode.serviceRestart, closeReason, false),
      gate: Gate.open,
      closesBefore: 0,
    };
    this.#up = {
      from: client,
      to: upstream,
      tracker: options.websocket ? new WebSocketFrameTracker() : null,
      closeFrame: () => closeFrame(WebSocketCloseCode.goingAway, 'proxy going away', true),
      gate: Gate.open,
      closesBefore: 0,
    };
    this.closed = new Promise<void>((resolve) =>
      client.once('close', () => {
        upstream.destroy();
        this.#transition(TunnelState.closed);
        options.onClosed(this);
        resolve();
      }),
    );
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', fail);
    upstream.on('error', fail);
    // The upstream went away first: what it sent is flushed to the client, then a FIN.
    upstream.once('close', () => {
      if (!client.destroyed) client.end();
      setTimeout(() => client.destroy(), options.graceMs).unref();
    });
    (client as Partial<Socket>).setTimeout?.(0);
    (client as Partial<Socket>).setKeepAlive?.(true, 60_000);
    this.#forward(this.#down);
    this.#forward(this.#up);
    if (options.clientHead.length > 0) this.#onData(this.#up, options.clientHead);
    // Both were paused while the upstream answered (the client's bytes and FIN wait in its buffer).
    client.resume();
    upstream.resume();
  }

  get state(): TunnelState {
    return this.#state;
  }

  /** Ends the tunnel politely; resolves once the client's socket is closed. Idempotent. */
  end(): Promise<void> {
    if (this.#state !== TunnelState.open) return this.closed;
    this.#transition(TunnelState.ending);
    const client = this.#client;
    const upstream = this.#upstream;
    const graceMs = this.#graceMs;
    setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, graceMs).unref();
    for (const dir of [this.#down, this.#up]) {
      if (dir.tracker === null || dir.tracker.state === 'broken') {
        // Nothing can go between frames: a FIN is the most polite thing left.
        dir.to.end();
      } else {
        dir.gate = Gate.closing;
        if (dir.tracker.atBoundary) this.#shut(dir);
      }
    }
    return this.closed;
  }

  #forward(dir: Direction): void {
    dir.from.on('data', (chunk: Buffer) => this.#onData(dir, chunk));
    dir.to.on('drain', () => dir.from.resume());
    const onEnd = () => {
      if (dir.gate !== Gate.shut) dir.to.end();
      // The peer half-closed after our close frame: nothing more will come from it.
      else dir.from.end();
    };
    // A client may send its FIN with the request (Node's server read it before handing the socket over):
    // its 'end' is gone, and without passing it on the tunnel would stay half open for ever.
    if (dir.from.readableEnded) onEnd();
    else dir.from.once('end', onEnd);
  }

  #onData(dir: Direction, chunk: Buffer): void {
    const tracker = dir.tracker;
    if (tracker === null || dir.gate === Gate.open) {
      tracker?.feed(chunk);
      if (!dir.to.write(chunk)) dir.from.pause();
      return;
    }
    if (dir.gate === Gate.closing) {
      const upTo = tracker.feed(chunk, true);
      if (upTo > 0) dir.to.write(chunk.subarray(0, upTo));
      if (!tracker.atBoundary) return;
      this.#shut(dir);
      chunk = chunk.subarray(upTo);
    }
    // Shut: the rest is read only to see the peer's own close frame, the answer to ours (RFC 6455 §5.5.1).
    tracker.feed(chunk);
    if (tracker.closeFrames > dir.closesBefore) dir.from.end();
  }

  #shut(dir: Direction): void {
    dir.gate = Gate.shut;
    dir.closesBefore = dir.tracker?.closeFrames ?? 0;
    dir.to.write(dir.closeFrame());
    dir.from.resume();
  }

  /** The one place the state changes: open → ending → closed, or open → closed. */
  #transition(to: TunnelState): void {
    if (this.#state === TunnelState.closed) return;
    if (to === TunnelState.ending && this.#state !== TunnelState.open) return;
    this.#state = to;
  }
}
