import type { Socket } from 'node:net';
import type { z } from 'zod';
import { EbbError } from '../core/index.ts';

/**
 * The longest line either side of a hand-off may send: a `sessions` message for a pool of thousands of
 * services fits many times over; anything longer is not ours, and the connection is closed.
 */
export const maxLineBytes = 4 * 1024 * 1024;

/** A line the other side sent that is not a message of the protocol: the connection is closed. */
export class HandoffProtocolError extends EbbError {
  constructor(message: string) {
    super('EBB_HANDOFF_PROTOCOL', `hand-off control socket: ${message}`);
  }
}

/**
 * One JSON message per line over a stream socket, each checked against `schema` on arrival. A line over
 * `maxLineBytes` or one that does not parse ends the connection with a `HandoffProtocolError` (told to
 * `onClose`); nothing the other side sends can throw into the caller.
 */
export class LineChannel<In, Out> {
  readonly #socket: Socket;
  #schema: z.ZodType<In>;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #onMessage: (message: In) => void = () => {};
  #closeError: Error | null = null;
  readonly closed: Promise<Error | null>;

  constructor(socket: Socket, schema: z.ZodType<In>) {
    this.#socket = socket;
    this.#schema = schema;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve(this.#closeError)));
    socket.on('error', (err) => {
      this.#closeError ??= err;
    });
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
  }

  onMessage(handler: (message: In) => void): void {
    this.#onMessage = handler;
  }

  /**
   * From the next line on, messages are read by `schema` (the other side took another role: a
   * predecessor re-attaching). The caller sets the handler for them with the returned channel.
   */
  reread<Next>(schema: z.ZodType<Next>): LineChannel<Next, unknown> {
    const next = this as unknown as LineChannel<Next, unknown>;
    next.#schema = schema;
    return next;
  }

  get open(): boolean {
    return !this.#socket.destroyed;
  }

  send(message: Out): void {
    if (this.#socket.destroyed) return;
    this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  close(): void {
    this.#socket.end();
  }

  #receive(chunk: Buffer): void {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      this.#buffered.push(chunk.subarray(start, newline));
      const line = Buffer.concat(this.#buffered).toString('utf8');
      this.#buffered = [];
      this.#bufferedBytes = 0;
      start = newline + 1;
      if (!this.#deliver(line)) return;
    }
    if (start < chunk.length) {
      this.#bufferedBytes += chunk.length - start;
      if (this.#bufferedBytes > maxLineBytes) {
        this.#fail(`a line longer than ${maxLineBytes} bytes`);
        return;
      }
      this.#buffered.push(chunk.subarray(start));
    }
  }

  #deliver(line: string): boolean {
    if (line.length > maxLineBytes) return this.#fail(`a line longer than ${maxLineBytes} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return this.#fail('a line that is not JSON');
    }
    const parsed = this.#schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.#fail(`an unknown message (${issue?.path.join('.') || 'message'}: ${issue?.message})`);
    }
    this.#onMessage(parsed.data);
    return !this.#socket.destroyed;
  }

  #fail(why: string): false {
    this.#closeError = new HandoffProtocolError(why);
    this.#socket.destroy();
    return false;
  }
}
