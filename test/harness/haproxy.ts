import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

export interface HaproxyServerLine {
  name: string;
  address: string;
  port: number;
  agentPort?: number;
  agentSend?: string;
}

/** A real HAProxy (Debian's `haproxy`) in TCP mode, started in the foreground and ended by its PID. */
export class Haproxy {
  readonly child: ChildProcess;
  readonly statsSocket: string;
  output = '';

  private constructor(child: ChildProcess, statsSocket: string) {
    this.child = child;
    this.statsSocket = statsSocket;
    child.stdout!.on('data', (d: Buffer) => (this.output += d));
    child.stderr!.on('data', (d: Buffer) => (this.output += d));
  }

  static async start(
    dir: string,
    frontend: { host: string; port: number },
    servers: HaproxyServerLine[],
  ): Promise<Haproxy> {
    const statsSocket = join(dir, 'haproxy.sock');
    const config = [
      'global',
      '  maxconn 4000',
      '  nbthread 1',
      `  stats socket ${statsSocket} mode 600 level admin`,
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 60s',
      '  timeout server 60s',
      '  retries 3',
      '  option redispatch',
      'frontend fe',
      `  bind ${frontend.host}:${frontend.port}`,
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
    const path = join(dir, 'haproxy.cfg');
    writeFileSync(path, config);
    const child = spawn('haproxy', ['-db', '-f', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const haproxy = new Haproxy(child, statsSocket);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${haproxy.output}`);
      try {
        await haproxy.stats();
        return haproxy;
      } catch {
        if (Date.now() > deadline) throw new Error(`haproxy did not start: ${haproxy.output}`);
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
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}
