import type { IncomingMessage, ClientRequest } from 'node:http';
import { WebSocket } from 'ws';
import { hostPort } from './http-connector.ts';
import { NoMemberAcceptedError, RetryReason, type ConnectAttempt } from './pool-connector.ts';
import type { Endpoint } from './pool-resolver.ts';

/** RFC 6455 §7.4.1 and the IANA registry: 1013 Try Again Later — the server is overloaded or refusing. */
export const tryAgainLater = 1013;

export interface WebSocketConnectOptions {
  /** `/ws`, `/ws/chat?name=…` */
  path: string;
  /** wss to the members (their listener has `tls:`). */
  tls?: boolean;
  /** PEM CA certificates to trust for wss, instead of the system's. */
  ca?: string | Buffer;
  /** Per member, for the connect and the upgrade (default 2 s). */
  timeoutMs?: number;
  /**
   * After the upgrade, the application may still say "go elsewhere": resolve true to keep the socket,
   * false to try the next member. A close while it runs (1013 above all) also moves on. Without it the
   * connector still waits one turn of the event loop for a close frame that came with the 101.
   */
  accepts?: (socket: WebSocket) => Promise<boolean>;
}

export interface WebSocketResult {
  socket: WebSocket;
  endpoint: Endpoint;
  attempts: ConnectAttempt[];
}

/**
 * The client connector for WebSockets (SPEC §4.4, §10): tries the members in the order given and moves to
 * the next on a refused connection, a timeout, a reset before the upgrade, a refused upgrade (any answer
 * but 101: a 503, or a load balancer's error page) and a close 1013 (Try Again Later) before the session
 * began.
 */
export async function openWebSocketFirstAccepting(
  endpoints: Endpoint[],
  options: WebSocketConnectOptions,
): Promise<WebSocketResult> {
  const attempts: ConnectAttempt[] = [];
  for (const endpoint of endpoints) {
    const opened = await tryOpen(endpoint, options);
    if (!opened.socket) {
      attempts.push(opened.record);
      continue;
    }
    const socket = opened.socket;
    const refusal = await began(socket, options.accepts);
    if (refusal) {
      socket.terminate();
      attempts.push({ endpoint, ...refusal });
      continue;
    }
    attempts.push({ endpoint, outcome: 'connected' });
    return { socket, endpoint, attempts };
  }
  throw new NoMemberAcceptedError(attempts);
}

function tryOpen(
  endpoint: Endpoint,
  options: WebSocketConnectOptions,
): Promise<{ socket?: WebSocket; record: ConnectAttempt }> {
  return new Promise((resolve) => {
    const url = `${options.tls ? 'wss' : 'ws'}://${hostPort(endpoint)}${options.path}`;
    const socket = new WebSocket(url, {
      handshakeTimeout: options.timeoutMs ?? 2000,
      perMessageDeflate: false,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.tls && endpoint.name ? { servername: endpoint.name.replace(/\.$/, '') } : {}),
    });
    let settled = false;
    const settle = (result: { socket?: WebSocket; record: ConnectAttempt }) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    socket.on('error', (err: NodeJS.ErrnoException) => {
      settle({ record: { endpoint, ...openFailure(err) } });
    });
    socket.once('unexpected-response', (req: ClientRequest, res: IncomingMessage) => {
      res.resume();
      req.destroy();
      settle({
        record: {
          endpoint,
          outcome: RetryReason.protocolRefusal,
          detail: `upgrade answered ${res.statusCode}`,
        },
      });
    });
    socket.once('open', () => settle({ socket, record: { endpoint, outcome: 'connected' } }));
  });
}

function openFailure(err: NodeJS.ErrnoException): Pick<ConnectAttempt, 'outcome' | 'detail'> {
  if (err.code === 'ECONNREFUSED') return { outcome: RetryReason.refused, detail: err.code };
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE')
    return { outcome: RetryReason.reset, detail: err.code };
  if (/timed out/i.test(err.message)) return { outcome: RetryReason.timeout, detail: err.message };
  return { outcome: 'error', detail: err.code ?? err.message };
}

/** Null when the session began; else why it moved on (the application said no, or the server closed). */
async function began(
  socket: WebSocket,
  accepts: WebSocketConnectOptions['accepts'],
): Promise<Pick<ConnectAttempt, 'outcome' | 'detail'> | null> {
  let closeCode: number | null = null;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', (code: number) => {
      closeCode = code;
      resolve();
    }),
  );
  const check = accepts
    ? accepts(socket).catch(() => false)
    : new Promise<boolean>((resolve) => setImmediate(() => resolve(true)));
  const verdict = await Promise.race([check, closed.then(() => false)]);
  if (verdict && socket.readyState === WebSocket.OPEN) return null;
  if (socket.readyState === WebSocket.CLOSING) await Promise.race([closed, sleep(500)]);
  const code = closeCode as number | null;
  if (code !== null)
    return {
      outcome: code === tryAgainLater ? RetryReason.protocolRefusal : RetryReason.reset,
      detail: `close ${code}`,
    };
  return { outcome: RetryReason.protocolRefusal, detail: 'refused by the application' };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
