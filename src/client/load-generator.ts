import type { Socket } from 'node:net';
import { connectToFirstAccepting, NoMemberAcceptedError } from './pool-connector.ts';
import type { Endpoint } from './pool-resolver.ts';

export interface LoadOptions {
  /** Fresh member list for each new session (a DNS answer). */
  endpoints: () => Promise<Endpoint[]>;
  ratePerSecond: number;
  durationMs: number;
  holdMs: number;
  /** Check that the service echoes (builtin:echo); otherwise a session is just held open. */
  echo: boolean;
  onProgress?: (stats: LoadStats) => void;
}

export interface LoadStats {
  started: number;
  accepted: number;
  failed: number;
  /** Sessions that reached a member only after another refused them. */
  retried: number;
  active: number;
  completed: number;
  elapsedMs: number;
  failures: Record<string, number>;
}

/** A hard cap so a mistyped rate cannot flood the machine. */
const maxSessions = 200_000;

/**
 * Steady demo traffic through the client connector (SPEC §7 `ebb load`): a new session every 1/rate
 * seconds, each resolved afresh, held for `holdMs` with an echo at both ends, then closed.
 */
export async function runLoad(options: LoadOptions): Promise<LoadStats> {
  const stats: LoadStats = {
    started: 0,
    accepted: 0,
    failed: 0,
    retried: 0,
    active: 0,
    completed: 0,
    elapsedMs: 0,
    failures: {},
  };
  const startedAt = Date.now();
  const total = Math.min(maxSessions, Math.floor((options.ratePerSecond * options.durationMs) / 1000));
  const sessions: Promise<void>[] = [];
  const fail = (why: string) => {
    stats.failed++;
    stats.failures[why] = (stats.failures[why] ?? 0) + 1;
  };
  const progressTimer = options.onProgress
    ? setInterval(() => options.onProgress!({ ...stats, elapsedMs: Date.now() - startedAt }), 1000)
    : null;

  const runSession = async (n: number) => {
    stats.active++;
    let socket: Socket | null = null;
    try {
      const endpoints = await options.endpoints();
      // The first exchange is part of connecting: a member that resets a connection before answering
      // (it paused in that instant) never began the session, so the connector moves on.
      const hello = `ebb-load ${n} hello\n`;
      const result = await connectToFirstAccepting(
        endpoints,
        options.echo ? { accepts: (s) => expectEcho(s, hello).then(() => true) } : {},
      );
      socket = result.socket;
      stats.accepted++;
      if (result.attempts.length > 1) stats.retried++;
      await sleep(options.holdMs);
      if (options.echo) await expectEcho(socket, `ebb-load ${n} bye\n`);
      await closeGracefully(socket);
      stats.completed++;
    } catch (err) {
      fail(err instanceof NoMemberAcceptedError ? 'no member accepted' : (err as Error).message);
      socket?.destroy();
    } finally {
      stats.active--;
    }
  };

  for (let n = 0; n < total; n++) {
    const due = startedAt + (n * 1000) / options.ratePerSecond;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    stats.started++;
    sessions.push(runSession(n));
  }
  await Promise.all(sessions);
  if (progressTimer) clearInterval(progressTimer);
  stats.elapsedMs = Date.now() - startedAt;
  return stats;
}

function expectEcho(socket: Socket, text: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
