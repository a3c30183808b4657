import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { HttpError, HttpErrorCode } from './http-errors.ts';
import type { ResponseHeaders, ResponseSink } from './response-sinks.ts';

export interface UpstreamExchangeHooks {
  /** The upstream could not be reached or gave no response head: counted as an upstream failure. */
  onUpstreamFailure(): void;
  /** The upstream switched protocols (101, or CONNECT's 2xx): the tunnel takes both sockets. */
  onUpgrade?(status: number, headers: ResponseHeaders, socket: Duplex): void;
}

/** undici's codes for a response head that did not come in time; the rest before a head are 502. */
const timeoutCodes: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT']);
/** Our own abort (the client went away, or Ebb cut the request): nothing to answer or count. */
const abortedCode = 'UND_ERR_ABORTED';

/**
 * One request to the upstream through undici's dispatcher (its lowest-level API: no body buffering, no
 * promise per chunk), streaming the response into a sink: a chunk the client cannot take yet pauses the
 * upstream (undici's controller), and 'drain' resumes it.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly #sink: ResponseSink;
  readonly #hooks: UpstreamExchangeHooks;
  #controller: Dispatcher.DispatchController | null = null;
  #cancelled: Error | null = null;
  #responded = false;

  constructor(sink: ResponseSink, hooks: UpstreamExchangeHooks) {
    this.#sink = sink;
    this.#hooks = hooks;
  }

  /** Stops the exchange (the client went away, or a deadline): undici closes or frees the connection. */
  cancel(reason: Error): void {
    if (this.#cancelled) return;
    this.#cancelled = reason;
    this.#controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#cancelled) controller.abort(this.#cancelled);
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: ResponseHeaders,
    socket: Duplex,
  ): void {
    this.#responded = true;
    // The tunnel outlives the exchange: drop undici's request (its serialized head and state).
    this.#controller = null;
    if (this.#cancelled || !this.#hooks.onUpgrade) {
      socket.destroy();
      return;
    }
    this.#hooks.onUpgrade(status, headers, socket);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: ResponseHeaders,
    message?: string,
  ): void {
    // 1xx interim responses (100 Continue was answered by Node already; 103 is not passed on).
    if (status < 200) return;
    this.#responded = true;
    if (this.#cancelled) return;
    this.#sink.start(status, message, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#cancelled) return;
    if (!this.#sink.write(chunk)) {
      controller.pause();
      this.#sink.onDrain(() => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (!this.#cancelled) this.#sink.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    if (this.#cancelled || code === abortedCode) return;
    if (this.#responded) {
      // The head went out: all that is left is to let the client see the response is incomplete.
      this.#sink.abort();
      return;
    }
    this.#hooks.onUpstreamFailure();
    this.#sink.fail(
      timeoutCodes.has(code)
        ? new HttpError(HttpErrorCode.upstreamTimeout, 'upstream did not answer in time', err)
        : new HttpError(
            HttpErrorCode.upstreamUnreachable,
            `upstream unreachable (${code || err.message})`,
            err,
          ),
    );
  }
}
