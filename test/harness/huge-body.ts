import { connect } from 'node:net';

export interface HugeBodyResult {
  /** The status line's code, or 0 when the connection closed without an answer. */
  status: number;
  /** Bytes of body written into the socket before it closed (the kernel's buffers take some). */
  sent: number;
}

/**
 * POSTs a `bytes`-long JSON-declared body to `path` over a raw socket, as a hostile client does: it
 * writes as fast as the server reads and never stops on its own before `bytes`. The body is one reused
 * 64 KB chunk, so the sender's memory does not grow with it. `chunked` sends no Content-Length;
 * `oneWrite` sends the whole request at once (a small body, allocated whole).
 */
export function postHugeBody(
  host: string,
  port: number,
  path: string,
  bytes: number,
  options: { chunked?: boolean; oneWrite?: boolean; timeoutMs?: number } = {},
): Promise<HugeBodyResult> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  return new Promise((resolve) => {
    const socket = connect(port, host);
    let answer = '';
    let sent = 0;
    const timer = setTimeout(() => socket.destroy(), options.timeoutMs ?? 10_000);
    socket.on('data', (data: Buffer) => {
      if (answer.length < 200) answer += data.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), sent });
    });
    const head =
      `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\n` +
      (options.chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${bytes}\r\n`) +
      '\r\n';
    if (options.oneWrite && !options.chunked) {
      // The whole request in one write, as a client that has sent everything before it reads.
      socket.write(Buffer.concat([Buffer.from(head), Buffer.alloc(bytes, 0x20)]));
      sent = bytes;
      return;
    }
    socket.write(head);
    const pump = () => {
      while (sent < bytes && !socket.destroyed) {
        const ok = options.chunked
          ? socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk) && socket.write('\r\n')
          : socket.write(chunk);
        sent += chunk.length;
        if (!ok) {
          socket.once('drain', pump);
          return;
        }
      }
      if (options.chunked && !socket.destroyed) socket.write('0\r\n\r\n');
      socket.end();
    };
    pump();
  });
}
