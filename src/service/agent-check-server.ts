import type { Socket } from 'node:net';
import type { EbbError, ServiceState } from '../core/index.ts';
import { TcpListeningSocket } from '../listeners/index.ts';

/** How long to wait for HAProxy's `agent-send` string before answering for the primary service. */
const agentSendWaitMs = 50;
const maxRequestBytes = 256;

/**
 * HAProxy's agent-check protocol (SPEC §4.3; HAProxy configuration manual, "agent-check"): HAProxy
 * connects, optionally sends its `agent-send` string (here: a service id), and reads one ASCII line.
 * `ready` lets it send new connections, `drain` stops new ones while existing ones continue, `maint`
 * takes the server out. HAProxy often resets the connection after reading: that is normal, not an error.
 */
export class AgentCheckServer {
  private server: TcpListeningSocket | null = null;
  private readonly host: string;
  private readonly port: number;
  private readonly stateOf: (service: string | null) => ServiceState | null;
  private readonly onError: ((err: EbbError) => void) | undefined;

  /**
   * `stateOf(null)` is the primary service; null means "no such service". `onError` is told of failed
   * accepts (EMFILE, …: HAProxy's check then fails and it marks the server down), throttled per errno.
   */
  constructor(
    host: string,
    port: number,
    stateOf: (service: string | null) => ServiceState | null,
    onError?: (err: EbbError) => void,
  ) {
    this.host = host;
    this.port = port;
    this.stateOf = stateOf;
    this.onError = onError;
  }

  /** The port bound (the OS's choice when configured as 0); 0 before `start()`. */
  get boundPort(): number {
    return this.server?.port ?? 0;
  }

  /** Failed accepts since start. */
  get acceptErrors(): number {
    return this.server?.acceptErrors ?? 0;
  }

  /** Rejects with a `ListenError` naming the errno (EADDRINUSE, …). */
  async start(): Promise<void> {
    this.server = await TcpListeningSocket.listen({
      host: this.host,
      port: this.port,
      label: 'agent-check',
      backlog: 511,
      onConnection: (socket) => this.onConnection(socket),
      onAcceptError: (err) => this.onError?.(err),
    });
  }

  /** Stops listening; resolves once the checks under way have been answered (each takes at most 2 s). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await server.close();
    await server.finished;
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    socket.setTimeout(2000, () => socket.destroy());
    let request = '';
    let answered = false;
    const answer = () => {
      if (answered || socket.destroyed) return;
      answered = true;
      clearTimeout(timer);
      const service = request.trim() || null;
      socket.end(`${agentCheckWord(this.stateOf(service))}\n`);
    };
    const timer = setTimeout(answer, agentSendWaitMs);
    socket.on('data', (chunk: Buffer) => {
      request += chunk.toString('latin1');
      if (request.length > maxRequestBytes) return socket.destroy();
      if (request.includes('\n')) answer();
    });
    socket.once('close', () => clearTimeout(timer));
  }
}

/** The agent-check reply for a service state. */
export function agentCheckWord(state: ServiceState | null): 'ready' | 'drain' | 'maint' {
  if (state === 'running') return 'ready';
  if (state === 'paused' || state === 'stopping') return 'drain';
  return 'maint';
}
