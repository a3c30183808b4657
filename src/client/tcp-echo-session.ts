import type { Socket } from 'node:net';
import { NotAcceptedError, sleep, type SessionRunner } from './load-generator.ts';
import { connectToFirstAccepting, NoMemberAcceptedError } from './pool-connector.ts';

/**
 * A TCP session for `ebb load`: connect through the connector, hold, close. With `echo`, the first
 * exchange is part of connecting — a member that resets a connection before answering (it paused in that
 * instant) never began the session, so the connector moves on — and a last exchange proves it survived.
 */
export function tcpSession(echo: boolean): SessionRunner {
  return async ({ endpoints, n, holdMs, accepted }) => {
    const hello = `ebb-load ${n} hello\n`;
    let socket: Socket;
    try {
      const result = await connectToFirstAccepting(
        endpoints,
        echo ? { accepts: (s) => expectEcho(s, hello).then(() => true) } : {},
      );
      socket = result.socket;
      accepted(result.attempts.length > 1);
    } catch (err) {
      if (err instanceof NoMemberAcceptedError) throw new NotAcceptedError('no member accepted');
      throw err;
    }
    try {
      await sleep(holdMs);
      if (echo) await expectEcho(socket, `ebb-load ${n} bye\n`);
      await closeGracefully(socket);
    } finally {
      socket.destroy();
    }
  };
}

function expectEcho(socket: Socket, text: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    // Closed while held (its member's process died): no 'close' will come again to wait for.
    if (socket.destroyed) return reject(new Error('closed by the server'));
    let received = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer) => {
      received += chunk.toString();
      if (received.length < text.length) return;
      done(received === text ? undefined : new Error('echo mismatch'));
    };
    const onClose = () => done(new Error('closed by the server'));
    const timer = setTimeout(() => done(new Error('echo timeout')), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(text);
  });
}

function closeGracefully(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('close', () => resolve());
    socket.end();
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}
