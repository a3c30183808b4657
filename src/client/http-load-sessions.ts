import type { WebSocket } from 'ws';
import type { HttpConnector } from './http-connector.ts';
import { NotAcceptedError, sleep, type SessionContext, type SessionRunner } from './load-generator.ts';
import { NoMemberAcceptedError } from './pool-connector.ts';
import { openWebSocketFirstAccepting } from './websocket-connector.ts';

/** What the sessions of an http load are. */
export const HttpSessionKind = {
  websocket: 'websocket',
  request: 'request',
  /** Every other session a WebSocket, the rest requests. */
  both: 'both',
} as const;
export type HttpSessionKind = (typeof HttpSessionKind)[keyof typeof HttpSessionKind];

export interface HttpLoadOptions {
  kind: HttpSessionKind;
  /** The connector the requests go through (its keep-alive connections are shared by the sessions). */
  connector: HttpConnector;
  /** The target of each request session: `/`, `/delay?ms=300`. */
  requestPath: string;
  /** Where WebSocket sessions connect: `/ws`. */
  webSocketPath: string;
  /** Messages each WebSocket sends per second while it is held (0: none). */
  messagesPerSecond: number;
  /** The upstream echoes on `webSocketPath` (builtin:web's `/ws`): each message's echo is checked. */
  echo: boolean;
  tls?: boolean;
  ca?: string | Buffer;
}

/**
 * Sessions of `ebb load` for an http service (SPEC §10): HTTP requests and WebSockets through the
 * connector. A request is accepted once a member answers (not 503); it fails on an answer of 400 or
 * more. A WebSocket is accepted once it is open (with `echo`, once its first message came back: a member
 * that closed it before that never began the session); it is held for the hold time, sending messages
 * at the rate asked, then closed by the client with 1000. The server closing it first is a failure.
 */
export function httpSession(options: HttpLoadOptions): SessionRunner {
  return (session) => {
    const webSocket =
      options.kind === HttpSessionKind.websocket ||
      (options.kind === HttpSessionKind.both && session.n % 2 === 0);
    return webSocket ? webSocketSession(options, session) : requestSession(options, session);
  };
}

async function requestSession(options: HttpLoadOptions, session: SessionContext): Promise<void> {
  const answer = await options.connector
    .request(session.endpoints, { path: options.requestPath })
    .catch(notAccepted);
  session.accepted(answer.attempts.length > 1);
  await answer.body.dump();
  if (answer.statusCode >= 400) throw new Error(`answered ${answer.statusCode}`);
}

async function webSocketSession(options: HttpLoadOptions, session: SessionContext): Promise<void> {
  let count = 0;
  const message = () => `ebb-load ${session.n} ${count++}`;
  const result = await openWebSocketFirstAccepting(session.endpoints, {
    path: options.webSocketPath,
    ...(options.tls ? { tls: true } : {}),
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.echo ? { accepts: (socket: WebSocket) => exchange(socket, message()).then(() => true) } : {}),
  }).catch(notAccepted);
  const socket = result.socket;
  session.accepted(result.attempts.length > 1);
  const server: { closedWith: number | null } = { closedWith: null };
  const closed = new Promise<void>((resolve) =>
    socket.once('close', (code: number) => {
      server.closedWith = code;
      resolve();
    }),
  );
  try {
    const end = Date.now() + session.holdMs;
    const gapMs = options.messagesPerSecond > 0 ? 1000 / options.messagesPerSecond : Infinity;
    for (;;) {
      const wait = Math.min(gapMs, end - Date.now());
      if (wait > 0) await Promise.race([sleep(wait), closed]);
      if (server.closedWith !== null) throw new Error(`closed by the server (${server.closedWith})`);
      if (Date.now() >= end) break;
      if (options.echo) await exchange(socket, message());
      else socket.send(message());
    }
    socket.close(1000);
    await Promise.race([closed, sleep(2000)]);
    if (server.closedWith === null) throw new Error('no close handshake within 2 s');
  } finally {
    socket.terminate();
  }
}

/**
 * No member took the session. Errors that are not a member saying "not now" (a certificate the client
 * does not trust, say) are named, so the operator sees the cause rather than only "no member accepted".
 */
function notAccepted(err: unknown): never {
  if (!(err instanceof NoMemberAcceptedError)) throw err;
  const errors = new Set(err.attempts.filter((a) => a.outcome === 'error').map((a) => a.detail ?? 'error'));
  throw new NotAcceptedError(`no member accepted${errors.size > 0 ? ` (${[...errors].join(', ')})` : ''}`);
}

/** Sends `text` and waits for it to come back. */
function exchange(socket: WebSocket, text: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (data: Buffer) =>
      done(data.toString() === text ? undefined : new Error('echo mismatch'));
    const onClose = (code: number) => done(new Error(`closed by the server (${code})`));
    const timer = setTimeout(() => done(new Error('echo timeout')), timeoutMs);
    socket.on('message', onMessage);
    socket.once('close', onClose);
    socket.send(text);
  });
}
