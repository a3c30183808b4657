import type { IncomingMessage, ServerResponse } from 'node:http';
import { EbbError, ExitCode } from '../core/index.ts';

/** The largest body a command may carry: its fields are a few short strings. */
export const maxBodyBytes = 16 * 1024;

/**
 * 413: the body is larger than `maxBodyBytes`. Reading stops there (issue 16 #6): the rest is never
 * read, so ten senders of 10 MB each cost the API no more memory than ten of 16 KB.
 */
export class BodyTooLargeError extends EbbError {
  constructor() {
    super('EBB_BODY_TOO_LARGE', `(body): is larger than ${maxBodyBytes / 1024} KB`, {
      httpStatus: 413,
      exitCode: ExitCode.usage,
      details: { issues: [{ path: '(body)', message: `is larger than ${maxBodyBytes / 1024} KB` }] },
    });
  }
}

/** A declared `Content-Length` over the limit (RFC 9110 §8.6); a missing or chunked one is read bounded. */
export function declaresTooLarge(contentLength: string | null | undefined): boolean {
  return contentLength != null && Number(contentLength) > maxBodyBytes;
}

/**
 * Before the request reaches the app: a body declared too large is answered 413 at once, unread, and the
 * connection is closed once the answer is out (RFC 9110 §15.5.14: the server may close the connection to
 * stop the client sending the rest). Returns false when the request was answered here.
 *
 * No lingering close (RFC 9112 §9.6): reading on to let a client that is still sending see the answer
 * would cost memory for every hostile sender; such a client may see a reset instead of the 413.
 */
export function admitBody(request: IncomingMessage, response: ServerResponse): boolean {
  if (!declaresTooLarge(request.headers['content-length'])) return true;
  request.pause();
  const body = JSON.stringify({ error: new BodyTooLargeError().toJSON() });
  response.writeHead(413, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  response.end(body);
  return false;
}

/** The body as text, read chunk by chunk and never past `maxBodyBytes`; throws BodyTooLargeError. */
export async function readBounded(request: Request): Promise<string> {
  if (declaresTooLarge(request.headers.get('content-length'))) throw new BodyTooLargeError();
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBodyBytes) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLargeError();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
