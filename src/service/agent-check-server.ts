import { createServer, type Server, type Socket } from 'node:net';
import { ListenError, type ServiceState } from '../core/index.ts';

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
  private server: Server | null = null;
  private readonly host: string;
  private readonly port: number;
  private readonly stateOf: (service: string | null) => ServiceState | null;

  /** `stateOf(null)` is the primary service; null means "no such service". */
  constructor(host: string, port: number, stateOf: (service: string | null) => ServiceState | null) {
    this.host = host;
    this.port = port;
    this.stateOf = stateOf;
  }

  async start(): Promise<void> {
    const server = createServer((socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new ListenError(`agent-check ${this.host}:${this.port}: ${err.message}`, err)),
      );
      server.listen({ host: this.host, port: this.port }, () => resolve());
    });
    server.on('error', () => {});
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
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
