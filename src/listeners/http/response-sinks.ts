import { STATUS_CODES, type ServerResponse } from 'node:http';
import { constants as h2, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { HttpError } from './http-errors.ts';
import { endToEndHeaders } from './hop-by-hop.ts';

/** Response headers as undici reports them: lower-case names, arrays for repeated fields. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/**
 * Where an upstream response goes: an HTTP/1.1 response, an HTTP/2 stream, or the raw socket of an
 * upgrade request the upstream did not upgrade. The exchange streams into it chunk by chunk, with
 * backpressure; nothing buffers a whole body.
 */
export interface ResponseSink {
  readonly headersSent: boolean;
  start(status: number, message: string | undefined, headers: ResponseHeaders): void;
  /** false: wait for `onDrain` before writing more. */
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
  end(): void;
  /** Answers with the error's status instead of a response (only before `start`). */
  fail(err: HttpError): void;
  /** Cuts a response already begun: the client sees it incomplete (RFC 9112 §8: a closed connection). */
  abort(): void;
}

function errorBody(err: HttpError): string {
  return `${err.status} ${err.message} (${err.code})\n`;
}

/**
 * HTTP/1.1. `closing()` says whether this response must be the connection's last (SPEC §10: the
 * listener is refusing): it then carries `Connection: close` (RFC 9112 §9.6) and Node closes the
 * connection after it.
 */
export class H1ResponseSink implements ResponseSink {
  readonly #res: ServerResponse;
  readonly #closing: () => boolean;

  constructor(res: ServerResponse, closing: () => boolean) {
    this.#res = res;
    this.#closing = closing;
  }

  get headersSent(): boolean {
    return this.#res.headersSent;
  }

  start(status: number, message: string | undefined, headers: ResponseHeaders): void {
    const flat: string[] = [];
    for (const [name, value] of endToEndHeaders(headers)) {
      if (typeof value === 'string') flat.push(name, value);
      else for (const v of value) flat.push(name, v);
    }
    if (this.#closing()) flat.push('connection', 'close');
    this.#res.writeHead(status, message, flat);
  }

  write(chunk: Buffer): boolean {
    return this.#res.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.#res.once('drain', resume);
  }

  end(): void {
    this.#res.end();
  }

  fail(err: HttpError): void {
    if (this.#res.headersSent) return this.abort();
    const body = errorBody(err);
    const headers: string[] = [
      'content-type',
      'text/plain; charset=utf-8',
      'content-length',
      String(Buffer.byteLength(body)),
    ];
    // A request Ebb refused to forward may be badly framed: do not read another one after it.
    if (err.status === 400 || err.status === 431 || this.#closing()) headers.push('connection', 'close');
    this.#res.writeHead(err.status, headers);
    this.#res.end(body);
  }

  abort(): void {
    this.#res.destroy();
  }
}

/** HTTP/2 forbids connection-specific fields in responses (RFC 9113 §8.2.2); `endToEndHeaders` drops them. */
export class H2ResponseSink implements ResponseSink {
  readonly #stream: ServerHttp2Stream;

  constructor(stream: ServerHttp2Stream) {
    this.#stream = stream;
  }

  get headersSent(): boolean {
    return this.#stream.headersSent;
  }

  start(status: number, _message: string | undefined, headers: ResponseHeaders): void {
    if (this.#stream.destroyed) return;
    const out: OutgoingHttpHeaders = { ':status': status };
    for (const [name, value] of endToEndHeaders(headers)) out[name] = value;
    this.#stream.respond(out);
  }

  write(chunk: Buffer): boolean {
    return this.#stream.destroyed ? true : this.#stream.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.#stream.once('drain', resume);
  }

  end(): void {
    if (!this.#stream.destroyed) this.#stream.end();
  }

  fail(err: HttpError): void {
    if (this.#stream.destroyed) return;
    if (this.#stream.headersSent) return this.abort();
    const body = errorBody(err);
    this.#stream.respond({ ':status': err.status, 'content-type': 'text/plain; charset=utf-8' });
    this.#stream.end(body);
  }

  /** RST_STREAM with CANCEL (RFC 9113 §7): the response will not be completed. */
  abort(): void {
    if (!this.#stream.destroyed) this.#stream.close(h2.NGHTTP2_CANCEL);
  }
}

/**
 * The socket of an upgrade or CONNECT request, after Node handed it over, when the upstream answered
 * with an ordinary response instead of switching (a 401, 404, …): the response is written as it is,
 * delimited by closing the connection (RFC 9112 §6.3, rule 8).
 */
export class RawResponseSink implements ResponseSink {
  readonly #socket: Duplex;
  #headersSent = false;

  constructor(socket: Duplex) {
    this.#socket = socket;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  start(status: number, message: string | undefined, headers: ResponseHeaders): void {
    this.#headersSent = true;
    let head = `HTTP/1.1 ${status} ${message ?? ''}\r\n`;
    for (const [name, value] of endToEndHeaders(headers)) {
      for (const v of typeof value === 'string' ? [value] : value) head += `${name}: ${v}\r\n`;
    }
    this.#socket.write(`${head}connection: close\r\n\r\n`);
  }

  write(chunk: Buffer): boolean {
    return this.#socket.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.#socket.once('drain', resume);
  }

  end(): void {
    this.#socket.end();
  }

  fail(err: HttpError): void {
    if (this.#headersSent) return this.abort();
    this.#headersSent = true;
    const body = errorBody(err);
    this.#socket.end(
      `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  abort(): void {
    this.#socket.destroy();
  }
}

/** The head of the upstream's 101 (or CONNECT's 2xx) as the client gets it. */
export function switchedHead(status: number, connect: boolean, headers: ResponseHeaders): string {
  let head = `HTTP/1.1 ${status} ${connect ? 'Connection Established' : 'Switching Protocols'}\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const v of typeof value === 'string' ? [value] : value) head += `${name}: ${v}\r\n`;
  }
  return `${head}\r\n`;
}
