import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ManagedProcess } from './managed-process.ts';

export interface HaproxyServerLine {
  name: string;
  address: string;
  port: number;
  agentPort?: number;
  agentSend?: string;
}

export interface HaproxyOptions {
  /** Most connections at once, for the process and the frontend (default 4000). */
  maxconn?: number;
  /** `timeout connect` (default 2s). */
  connectTimeout?: string;
  /** `timeout client` and `timeout server`: how long an idle session stays (default 60s). */
  idleTimeout?: string;
  /**
   * The limit on open files to start it with. HAProxy raises its own limit to about 2 × maxconn, which
   * cannot go past this: a larger maxconn is refused here rather than failing later.
   */
  fdLimit?: number;
  /**
   * `tcp` (default): connections are balanced. `http`: HAProxy parses HTTP, balances each request (over
   * its own keep-alive connections to the servers) and passes upgraded WebSockets through as tunnels.
   */
  mode?: 'tcp' | 'http';
  /** http: `timeout tunnel`, how long an idle WebSocket stays (default 1h). */
  tunnelTimeout?: string;
  /** `nbthread` (default 1, as Ebb's agent thread). */
  threads?: number;
}

/**
 * The config: TCP mode unless `options.mode` says http, one thread (Ebb is one Node thread), a stats
 * socket, round robin over `servers`.
 */
export function haproxyConfig(
  statsSocket: string,
  frontend: { host: string; port: number },
  servers: readonly HaproxyServerLine[],
  options: HaproxyOptions = {},
): string {
  const maxconn = options.maxconn ?? 4000;
  const idle = options.idleTimeout ?? '60s';
  return [
    'global',
    `  maxconn ${maxconn}`,
    `  nbthread ${options.threads ?? 1}`,
    `  stats socket ${statsSocket} mode 600 level admin`,
    'defaults',
    `  mode ${options.mode ?? 'tcp'}`,
    `  timeout connect ${options.connectTimeout ?? '2s'}`,
    `  timeout client ${idle}`,
    `  timeout server ${idle}`,
    ...(options.mode === 'http' ? [`  timeout tunnel ${options.tunnelTimeout ?? '1h'}`] : []),
    '  retries 3',
    '  option redispatch',
    // http: a request on an idle connection the server closed in that instant is sent again, elsewhere.
    ...(options.mode === 'http' ? ['  retry-on conn-failure empty-response'] : []),
    'frontend fe',
    `  bind ${frontend.host}:${frontend.port}`,
    `  maxconn ${maxconn}`,
    '  default_backend pool',
    'backend pool',
    '  balance roundrobin',
    ...servers.map(
      (s) =>
        `  server ${s.name} ${s.address}:${s.port}` +
        (s.agentPort ? ` check inter 2s agent-check agent-port ${s.agentPort} agent-inter 200ms` : '') +
        (s.agentSend ? ` agent-send "${s.agentSend}\\n"` : ''),
    ),
    '',
  ].join('\n');
}

/** A real HAProxy (Debian's `haproxy`), TCP or HTTP mode, started in the foreground, ended by its PID. */
export class Haproxy {
  readonly process: ManagedProcess;
  readonly statsSocket: string;

  private constructor(proc: ManagedProcess, statsSocket: string) {
    this.process = proc;
    this.statsSocket = statsSocket;
  }

  get child(): ManagedProcess['child'] {
    return this.process.child;
  }

  get output(): string {
    return this.process.output;
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Writes the config into `dir`, starts HAProxy and waits until its stats socket answers. */
  static async start(
    dir: string,
    frontend: { host: string; port: number },
    servers: HaproxyServerLine[],
    options: HaproxyOptions = {},
  ): Promise<Haproxy> {
    const maxconn = options.maxconn ?? 4000;
    if (options.fdLimit !== undefined && maxconn > Math.floor((options.fdLimit - 100) / 2))
      throw new Error(`haproxy maxconn ${maxconn} needs more than the fd limit allows (${options.fdLimit})`);
    const statsSocket = join(dir, `haproxy-${frontend.port}.sock`);
    const path = join(dir, `haproxy-${frontend.port}.cfg`);
    writeFileSync(path, haproxyConfig(statsSocket, frontend, servers, options));
    const haproxy = new Haproxy(
      new ManagedProcess('haproxy', 'haproxy', ['-db', '-f', path], {
        ...(options.fdLimit !== undefined ? { fdLimit: options.fdLimit } : {}),
        maxOutput: 65_536,
      }),
      statsSocket,
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!haproxy.process.running) throw new Error(`haproxy exited: ${haproxy.output}`);
      try {
        await haproxy.stats();
        return haproxy;
      } catch {
        if (Date.now() > deadline) {
          await haproxy.stop();
          throw new Error(`haproxy did not start: ${haproxy.output}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** `show stat` rows of the backend's servers, keyed by server name. */
  async stats(): Promise<Record<string, Record<string, string>>> {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(this.statsSocket);
      let out = '';
      socket.on('data', (d: Buffer) => (out += d));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
      socket.write('show stat\n');
    });
    const lines = text.trim().split('\n');
    const header = lines[0]!.replace(/^# /, '').split(',');
    const rows: Record<string, Record<string, string>> = {};
    for (const line of lines.slice(1)) {
      const cells = line.split(',');
      const row = Object.fromEntries(header.map((h, i) => [h, cells[i] ?? '']));
      if (row.pxname === 'pool') rows[row.svname!] = row;
    }
    return rows;
  }

  stop(): Promise<void> {
    return this.process.stop('SIGTERM');
  }
}
