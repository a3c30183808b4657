import { connect, type Socket } from 'node:net';

/** Opens one TCP connection; rejects with the socket error code (ECONNREFUSED, …). */
export function openSocket(host: string, port: number, timeoutMs = 2000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The error code a connect ends with, or 'connected' (and the socket is closed again). */
export async function tryConnect(host: string, port: number): Promise<string> {
  try {
    const socket = await openSocket(host, port);
    socket.destroy();
    return 'connected';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

/** Sends a line and resolves with what comes back (an echo service returns it unchanged). */
export function roundTrip(socket: Socket, text: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(
        new Error(
          `no echo of ${JSON.stringify(text)} within ${timeoutMs} ms (got ${JSON.stringify(received)})`,
        ),
      );
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      received += chunk.toString();
      if (received.length >= text.length) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(received);
      }
    };
    socket.on('data', onData);
    socket.write(text);
  });
}

/** Closes a socket and waits until it is fully closed. */
export function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.end();
  });
}

/** Resolves when `socket` is closed by the other side. */
export function closedByPeer(socket: Socket, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error('socket was not closed by the peer')), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
