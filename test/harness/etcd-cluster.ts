import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from './managed-process.ts';
import { freePorts } from './ports.ts';

/** Debian's `etcd-server` package; CI installs it through `scripts/ensure-deps.sh --peers`. */
export const etcdBin = process.env['EBB_ETCD_BIN'] ?? '/usr/bin/etcd';

/**
 * The flags of one member of a new cluster: its name, data dir, client and peer URLs, the whole
 * cluster's peers (`name=peerUrl,...`), a token of this cluster alone. Raft timers are shortened
 * (heartbeat 50 ms, election 500 ms) so losing the leader costs well under a second and the smallest
 * lease TTL etcd allows is 1 s.
 */
export function etcdMemberArgs(m: {
  name: string;
  dataDir: string;
  clientUrl: string;
  peerUrl: string;
  initialCluster: string;
  token: string;
}): string[] {
  return [
    `--name=${m.name}`,
    `--data-dir=${m.dataDir}`,
    `--listen-client-urls=${m.clientUrl}`,
    `--advertise-client-urls=${m.clientUrl}`,
    `--listen-peer-urls=${m.peerUrl}`,
    `--initial-advertise-peer-urls=${m.peerUrl}`,
    `--initial-cluster=${m.initialCluster}`,
    '--initial-cluster-state=new',
    `--initial-cluster-token=${m.token}`,
    '--heartbeat-interval=50',
    '--election-timeout=500',
  ];
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  process: ManagedProcess | null;
}

export interface EtcdClusterOptions {
  /** Members (default 3). */
  size?: number;
  timeoutMs?: number;
  /** More flags for every member, e.g. `--max-txn-ops=2048`. */
  extraArgs?: string[];
  /** The etcd binary (default `etcdBin`). */
  bin?: string;
}

/**
 * A real etcd cluster on loopback for tests: `size` members, each with its own random client and peer
 * ports and its own data directory under one temp dir. Members are ended by the PIDs this class started,
 * never by name. Raft timers are shortened (see `etcdMemberArgs`).
 */
export class EtcdCluster {
  readonly root: string;
  private readonly members: Member[];
  private readonly token: string;
  private readonly bin: string;
  private readonly extraArgs: readonly string[];
  private readonly killOnExit = () => this.killAllNow();
  /** Ctrl-C or the test runner's SIGTERM skip `exit` handlers: end the members, then die of the signal. */
  private readonly killOnSignal = (signal: NodeJS.Signals) => {
    this.killAllNow();
    this.unhook();
    process.kill(process.pid, signal);
  };
  private stopped = false;

  private constructor(root: string, members: Member[], bin: string, extraArgs: readonly string[]) {
    this.root = root;
    this.members = members;
    this.bin = bin;
    this.extraArgs = extraArgs;
    this.token = `ebb-test-${randomBytes(4).toString('hex')}`;
    process.on('exit', this.killOnExit);
    process.once('SIGINT', this.killOnSignal);
    process.once('SIGTERM', this.killOnSignal);
  }

  /** Starts every member and resolves once each one reports itself healthy. */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const bin = options.bin ?? etcdBin;
    if (!existsSync(bin)) {
      throw new Error(`${bin} is missing: install Debian's etcd-server (scripts/ensure-deps.sh --peers)`);
    }
    const size = options.size ?? 3;
    const root = mkdtempSync(join(tmpdir(), 'ebb-etcd-'));
    const ports = await freePorts(size * 2);
    const members: Member[] = Array.from({ length: size }, (_, i) => ({
      name: `m${i}`,
      clientPort: ports[2 * i]!,
      peerPort: ports[2 * i + 1]!,
      dataDir: join(root, `m${i}`),
      process: null,
    }));
    const cluster = new EtcdCluster(root, members, bin, options.extraArgs ?? []);
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
    const proc = this.member(index).process;
    return proc?.running ? proc.pid : undefined;
  }

  isRunning(index: number): boolean {
    return this.member(index).process?.running === true;
  }

  /** Kills one member with SIGKILL (a crash) and waits until the process is gone. */
  async kill(index: number): Promise<void> {
    await this.member(index).process?.stop('SIGKILL');
  }

  /**
   * Freezes one member with SIGSTOP: it keeps its connections and answers nothing, as a member that hangs
   * or is cut off does (the failure a killed member does not show). `thaw` continues it.
   */
  freeze(index: number): void {
    this.member(index).process?.signal('SIGSTOP');
  }

  thaw(index: number): void {
    this.member(index).process?.signal('SIGCONT');
  }

  /** Starts a killed member again on the same ports and data dir, and waits for the cluster to be healthy. */
  async restart(index: number, timeoutMs = 15_000): Promise<void> {
    if (this.isRunning(index)) throw new Error(`etcd member ${index} is still running`);
    this.spawnMember(index);
    await this.waitHealthy(timeoutMs);
  }

  /** Starts every killed member at once (one alone has no quorum), then waits for the cluster to be healthy. */
  async restartAll(timeoutMs = 20_000): Promise<void> {
    this.members.forEach((_, index) => {
      if (!this.isRunning(index)) this.spawnMember(index);
    });
    await this.waitHealthy(timeoutMs);
  }

  /** Index of the member that currently leads, as the running members report it. */
  async leader(): Promise<number> {
    const statuses = await Promise.all(
      this.members.map((m) => (m.process?.running ? this.status(m).catch(() => null) : null)),
    );
    const leaderId = statuses.find((s) => s && s.leader !== '0')?.leader;
    const index = statuses.findIndex((s) => s !== null && s.header.member_id === leaderId);
    if (leaderId === undefined || index < 0) throw new Error('no running etcd member reports a leader');
    return index;
  }

  /** How many watches a member is serving now (its `etcd_debugging_mvcc_watcher_total` gauge). */
  async watchers(index: number): Promise<number> {
    const member = this.member(index);
    if (!member.process?.running) return 0;
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
        if (!member.process?.running) break;
        if (await this.healthy(member)) break;
        if (Date.now() > deadline) {
          const log = member.process.output;
          throw new Error(`etcd member ${member.name} not healthy within ${timeoutMs} ms\n${log}`);
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
    const args = etcdMemberArgs({
      name: m.name,
      dataDir: m.dataDir,
      clientUrl: `http://127.0.0.1:${m.clientPort}`,
      peerUrl: `http://127.0.0.1:${m.peerPort}`,
      initialCluster: this.members.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(','),
      token: this.token,
    });
    // The tail of the member's log is kept for failure messages.
    m.process = new ManagedProcess(
      `etcd member ${m.name}`,
      this.bin,
      [...args, '--logger=zap', '--log-outputs=stderr', '--log-level=warn', ...this.extraArgs],
      { maxOutput: 4000 },
    );
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
    for (const member of this.members) member.process?.signal('SIGKILL');
    rmSync(this.root, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
