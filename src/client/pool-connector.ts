import { connect, type Socket } from 'node:net';
import { EbbError } from '../core/index.ts';
import type { Endpoint } from './pool-resolver.ts';

/** Why an attempt moved on to the next member. */
export const RetryReason = {
  refused: 'refused',
  timeout: 'timeout',
  reset: 'reset',
  protocolRefusal: 'protocol-refusal',
} as const;
export type RetryReason = (typeof RetryReason)[keyof typeof RetryReason];

export interface ConnectAttempt {
  endpoint: Endpoint;
  outcome: 'connected' | RetryReason | 'error';
  detail?: string;
}

export interface ConnectResult {
  socket: Socket;
  endpoint: Endpoint;
  attempts: ConnectAttempt[];
}

export interface ConnectOptions {
  timeoutMs?: number;
  /**
   * After the TCP connect, a protocol may still say "go elsewhere" (SIP 503, HTTP 503, WebSocket 1013):
   * resolve true to keep the connection, false to try the next member.
   */
  accepts?: (socket: Socket) => Promise<boolean>;
}

export class NoMemberAcceptedError extends EbbError {
  readonly attempts: ConnectAttempt[];
  constructor(attempts: ConnectAttempt[]) {
    super(
      'EBB_NO_MEMBER_ACCEPTED',
      attempts.length === 0
        ? 'no member of the pool accepts new sessions (DNS returned none)'
        : `no member accepted: ${attempts.map((a) => `${a.endpoint.host}:${a.endpoint.port} ${a.outcome}`).join(', ')}`,
    );
    this.attempts = attempts;
  }
}

/**
 * The client connector (SPEC §4.4): tries the members in the order given and moves to the next on
 * connection refused, timeout, reset before the session began, or a protocol refusal.
 */
export async function connectToFirstAccepting(
  endpoints: Endpoint[],
  options: ConnectOptions = {},
): Promise<ConnectResult> {
  const attempts: ConnectAttempt[] = [];
  for (const endpoint of endpoints) {
    const attempt = await tryEndpoint(endpoint, options.timeoutMs ?? 2000);
    if (!attempt.socket) {
      attempts.push(attempt.record);
      continue;
    }
    if (options.accepts && !(await options.accepts(attempt.socket).catch(() => false))) {
      attempt.socket.destroy();
      attempts.push({ endpoint, outcome: RetryReason.protocolRefusal });
      continue;
    }
    attempts.push({ endpoint, outcome: 'connected' });
    return { socket: attempt.socket, endpoint, attempts };
  }
  throw new NoMemberAcceptedError(attempts);
}

function tryEndpoint(
  endpoint: Endpoint,
  timeoutMs: number,
): Promise<{ socket?: Socket; record: ConnectAttempt }> {
  return new Promise((resolve) => {
    const socket = connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ record: { endpoint, outcome: RetryReason.timeout } });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve({ socket, record: { endpoint, outcome: 'connected' } });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const outcome =
        err.code === 'ECONNREFUSED'
          ? RetryReason.refused
          : err.code === 'ECONNRESET'
            ? RetryReason.reset
            : 'error';
      resolve({ record: { endpoint, outcome, detail: err.code ?? err.message } });
    });
  });
}
