import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's `etcd-server` package; CI installs it through `scripts/ensure-deps.sh --peers`. */
export const etcdBin = process.env['EBB_ETCD_BIN'] ?? '/usr/bin/etcd';

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child: ChildProcess | null;
  /** The tail of the member's log, for failure messages. */
  log: string;
}

/**
 * A real etcd cluster on loopback for tests: `size` members, each with its own random client and peer
 * ports and its own data directory under one temp dir. Members are ended by the PIDs this class started,
 * never by name. Raft timers are shortened (heartbeat 50 ms, election 500 ms) so losing the leader costs
 * well under a second and the smallest lease TTL etcd allows is 1 s.
 */
export class EtcdCluster {
  readonly root: string;
  private readonly members: Member[];
  private readonly token: string;
  private readonly killOnExit = () => this.killAllNow();
  /** Ctrl-C or the test runner's SIGTERM skip `exit` handlers: end the members, then die of the signal. */
  private readonly killOnSignal = (signal: NodeJS.Signals) => {
    this.killAllNow();
    this.unhook();
    process.kill(process.pid, signal);
  };
  private stopped = false;

  private constructor(root: string, members: Member[]) {
    this.root = root;
    this.members = members;
    this.token = `ebb-test-${randomBytes(4).toString('hex')}`;
    process.on('exit', this.killOnExit);
    process.once('SIGINT', this.killOnSignal);
    process.once('SIGTERM', this.killOnSignal);
  }

  /** Starts every member and resolves once each one reports itself healthy. */
  static async start(options: { size?: number; timeoutMs?: number } = {}): Promise<EtcdCluster> {
    if (!existsSync(etcdBin)) {
      throw new Error(`${etcdBin} is missing: install Debian's etcd-server (scripts/ensure-deps.sh --peers)`);
    }
    const size = options.size ?? 3;
    const root = mkdtempSync(join(tmpdir(), 'ebb-etcd-'));
    const ports = await freePorts(size * 2);
    const members: Member[] = Array.from({ length: size }, (_, i) => ({
      name: `m${i}`,
      clientPort: ports[2 * i]!,
      peerPort: ports[2 * i + 1]!,
      dataDir: join(root, `m${i}`),
      child: null,
      log: '',
    }));
    const cluster = new EtcdCluster(root, members);
    try {
      for (let i = 0; i < size; i++) cluster.spawnMember(i);
      await cluster.waitHealthy(options.timeoutMs ?? 20_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** `host:port` of every member's client URL, in member order. */
  get endpoints(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /** The store spec Ebb takes (`etcd://host:port,...`). */
  get spec(): string {
    return `etcd://${this.endpoints.join(',')}`;
  }

  get size(): number {
    return this.members.length;
  }

  pid(index: number): number | undefined {
    return this.member(index).child?.pid;
  }

  isRunning(index: number): boolean {
    return this.member(index).child !== null;
  }

  /** Kills one member with SIGKILL (a crash) and waits until the process is gone. */
  async kill(index: number): Promise<void> {
    const member = this.member(index);
    const child = member.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed member again on the same ports and data dir, and waits for the cluster to be healthy. */
  async restart(index: number, timeoutMs = 15_000): Promise<void> {
    if (this.member(index).child) throw new Error(`etcd member ${index} is still running`);
    this.spawnMember(index);
    await this.waitHealthy(timeoutMs);
  }

  /** Starts every killed member at once (one alone has no quorum), then waits for the cluster to be healthy. */
  async restartAll(timeoutMs = 20_000): Promise<void> {
    this.members.forEach((member, index) => {
      if (!member.child) this.spawnMember(index);
    });
    await this.waitHealthy(timeoutMs);
  }

  /** Index of the member that currently leads, as the running members report it. */
  async leader(): Promise<number> {
    const statuses = await Promise.all(
      this.members.map((m) => (m.child ? this.status(m).catch(() => null) : null)),
    );
    const leaderId = statuses.find((s) => s && s.leader !== '0')?.leader;
    const index = statuses.findIndex((s) => s !== null && s.header.member_id === leaderId);
    if (leaderId === undefined || index < 0) throw new Error('no running etcd member reports a leader');
    return index;
  }

  /** How many watches a member is serving now (its `etcd_debugging_mvcc_watcher_total` gauge). */
  async watchers(index: number): Promise<number> {
    const member = this.member(index);
    if (!member.child) return 0;
    const res = await fetch(`http://127.0.0.1:${member.clientPort}/metrics`, {
      signal: AbortSignal.timeout(1000),
    });
    const line = (await res.text())
      .split('\n')
      .find((l) => l.startsWith('etcd_debugging_mvcc_watcher_total '));
    return Number(line?.split(' ')[1] ?? 0);
  }

  /** Waits until every running member answers `/health` with true (it has a leader and can serve). */
  async waitHealthy(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const member of this.members) {
      for (;;) {
        if (!member.child) break;
        if (await this.healthy(member)) break;
        if (Date.now() > deadline) {
          throw new Error(`etcd member ${member.name} not healthy within ${timeoutMs} ms\n${member.log}`);
        }
        await sleep(50);
      }
    }
  }

  /** Kills every member this cluster started (by PID) and removes its data. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.members.map((_, i) => this.kill(i)));
    this.unhook();
    rmSync(this.root, { recursive: true, force: true });
  }

  private member(index: number): Member {
    const member = this.members[index];
    if (!member) throw new Error(`no etcd member ${index} (cluster of ${this.members.length})`);
    return member;
  }

  private spawnMember(index: number): void {
    const m = this.member(index);
    const peers = this.members.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(',');
    const client = `http://127.0.0.1:${m.clientPort}`;
    const peer = `http://127.0.0.1:${m.peerPort}`;
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${peers}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${this.token}`,
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
    ];
    const child = spawn(etcdBin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    m.child = child;
    m.log = '';
    child.stderr!.on('data', (d: Buffer) => {
      m.log = (m.log + d.toString()).slice(-4000);
    });
    child.once('exit', () => {
      if (m.child === child) m.child = null;
    });
  }

  private async healthy(member: Member): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${member.clientPort}/health`, {
        signal: AbortSignal.timeout(1000),
      });
      const body = (await res.json()) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  }

  private async status(member: Member): Promise<{ header: { member_id: string }; leader: string }> {
    const res = await fetch(`http://127.0.0.1:${member.clientPort}/v3/maintenance/status`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(1000),
    });
    return (await res.json()) as { header: { member_id: string }; leader: string };
  }

  private unhook(): void {
    process.off('exit', this.killOnExit);
    process.off('SIGINT', this.killOnSignal);
    process.off('SIGTERM', this.killOnSignal);
  }

  /** Last resort when the test process exits without `stop()`: no etcd outlives its test. */
  private killAllNow(): void {
    for (const member of this.members) member.child?.kill('SIGKILL');
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Distinct free loopback ports: all listeners stay open until every port is known, so none repeats. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port for a TCP listener');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
