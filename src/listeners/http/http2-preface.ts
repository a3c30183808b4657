import type { Socket } from 'node:net';

/** RFC 9113 §3.4: the client connection preface that opens HTTP/2 with prior knowledge (§3.3). */
const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Tells a cleartext HTTP/2 connection (h2c with prior knowledge) from an HTTP/1.1 one by its first bytes,
 * reading no more than the preface, and puts what it read back into the socket for the server that takes
 * it. `decide` is called once; a connection that sends nothing for `timeoutMs`, or closes first, is
 * destroyed without a verdict.
 */
export function sniffHttp2Preface(socket: Socket, timeoutMs: number, decide: (http2: boolean) => void): void {
  let seen: Buffer | null = null;
  const cleanup = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
  };
  const onData = (chunk: Buffer) => {
    seen = seen === null ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, preface.length);
    const isPreface = seen.subarray(0, n).equals(preface.subarray(0, n));
    if (isPreface && seen.length < preface.length) return;
    cleanup();
    socket.pause();
    socket.unshift(seen);
    decide(isPreface);
  };
  const onClose = () => cleanup();
  const timer = setTimeout(() => {
    cleanup();
    socket.destroy();
  }, timeoutMs);
  socket.on('data', onData);
  socket.once('close', onClose);
}
