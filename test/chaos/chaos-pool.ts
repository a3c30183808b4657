import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { EbbServer, Workspace } from '../harness/ebb-process.ts';
import type { EtcdCluster } from '../harness/etcd-cluster.ts';
import { loopbackNet, poolYaml, type ConfigInput } from '../harness/pool-config.ts';
import { freePortRange } from '../harness/ports.ts';
import { rssMb } from '../harness/process-memory.ts';
import { openSocket, roundTrip, tryConnect } from '../harness/tcp-sessions.ts';

/** Which Ebb process a scenario aims at. */
export type EbbRole = 'agent' | 'api' | 'dns';

export interface ChaosPoolOptions {
  /** `sqlite:<path>` or an etcd cluster. */
  store: { sqlite: string } | { etcd: EtcdCluster };
  members?: number;
  workspace: Workspace;
  /** `up`: the whole pool in one `ebb up` process (one DNS server) instead of separate processes. */
  mode?: 'split' | 'up';
}

interface Proc {
  name: string;
  args: string[];
  ready: RegExp;
  server: EbbServer | null;
}

/**
 * A pool as it runs across machines, on loopback: one `ebb agent` per member (127.0.<net>.1…), two
 * `ebb dns` and one `ebb api`, all separate processes on one store, so each can be killed alone. Every
 * member has a tcp `echo` service (`builtin:echo`) and a sip/udp `voice` service (`builtin:sip-uas`).
 * Processes are started and ended by their PIDs only.
 */
export class ChaosPool {
  readonly ws: Workspace;
  readonly config: string;
  readonly members: Array<{ id: string; address: string }>;
  readonly echoPort: number;
  readonly voicePort: number;
  readonly dnsServers: string[];
  readonly apiUrl: string;
  readonly apiPort: number;
  readonly fqdn: string;
  readonly dnsTtlS = 1;
  private readonly procs = new Map<string, Proc>();
  private readonly configInput: ConfigInput;

  private constructor(ws: Workspace, config: ConfigInput, base: number, mode: 'split' | 'up') {
    this.ws = ws;
    this.echoPort = base;
    this.voicePort = base + 1;
    this.apiPort = base + 10;
    this.apiUrl = `http://127.0.0.1:${this.apiPort}`;
    this.dnsServers = [`127.0.0.1:${base + 11}`, `127.0.0.1:${base + 12}`];
    this.fqdn = config.pool.fqdn;
    this.members = config.members.map((m) => ({ id: m.id, address: m.address }));
    this.configInput = config;
    this.config = ws.file('pool.yaml', poolYaml(config));
    if (mode === 'up') {
      this.dnsServers = [this.dnsServers[0]!];
      this.procs.set('up', { name: 'up', args: ['up', this.config], ready: /is up/, server: null });
      return;
    }
    for (const m of this.members)
      this.procs.set(`agent:${m.id}`, {
        name: `agent ${m.id}`,
        args: ['agent', '--config', this.config, '--member', m.id],
        ready: new RegExp(`ebb agent ${m.id}: running`),
        server: null,
      });
    this.dnsServers.forEach((listen, i) =>
      this.procs.set(`dns:${i}`, {
        name: `dns ${i}`,
        args: ['dns', '--config', this.config, '--listen', listen],
        ready: /ebb dns:/,
        server: null,
      }),
    );
    this.procs.set('api:0', {
      name: 'api',
      args: ['api', '--config', this.config],
      ready: /ebb api:/,
      server: null,
    });
  }

  static async create(options: ChaosPoolOptions): Promise<ChaosPool> {
    const base = await freePortRange(16);
    const net = loopbackNet();
    const count = options.members ?? 3;
    const store = 'sqlite' in options.store ? `sqlite:${options.store.sqlite}` : options.store.etcd.spec;
    const local = join(options.workspace.dir, 'local');
    mkdirSync(local, { recursive: true });
    const config: ConfigInput = {
      pool: { name: `chaos${base}`, fqdn: `chaos${base}.ebb.test`, minAccepting: 1, dnsTtl: 1 },
      store,
      dns: { listen: `127.0.0.1:${base + 11}` },
      api: { listen: `127.0.0.1:${base + 10}` },
      agent: { leaseTtl: '5s', localState: local },
      members: Array.from({ length: count }, (_, i) => ({
        id: `m${i + 1}`,
        address: `127.0.${net}.${i + 1}`,
        services: [
          { id: 'echo', listeners: [{ protocol: 'tcp', port: base, upstream: 'builtin:echo' }] },
          {
            id: 'voice',
            listeners: [{ protocol: 'sip', transport: 'udp', port: base + 1, upstream: 'builtin:sip-uas' }],
          },
        ],
      })),
    };
    return new ChaosPool(options.workspace, config, base, options.mode ?? 'split');
  }

  /**
   * Starts every process that is not running, agents first, and waits until every member accepts but
   * those in `paused` (members that must come back paused), which must not.
   */
  async start(paused: readonly string[] = []): Promise<void> {
    await Promise.all([...this.procs.keys()].map((key) => this.startProc(key)));
    const wanted = this.members.map((m) => m.id).filter((id) => !paused.includes(id));
    await this.until(
      async () => {
        const accepting = await this.accepting();
        return wanted.every((id) => accepting.includes(id)) && accepting.length === wanted.length;
      },
      paused.length ? `every member but ${paused.join(', ')} accepts` : 'every member accepts',
    );
  }

  /** Starts one process (on another config file when given, e.g. another store). */
  async startProc(key: string, config = this.config): Promise<void> {
    const proc = this.proc(key);
    if (proc.server?.running) return;
    const args = proc.args.map((a) => (a === this.config ? config : a));
    proc.server = await EbbServer.start(args, proc.ready, { cwd: this.ws.dir, name: `ebb ${proc.name}` });
  }

  /** This pool's config on another store, written beside it; returns its path. */
  configWithStore(name: string, store: string): string {
    return this.ws.file(name, poolYaml({ ...this.configInput, store }));
  }

  /** kill -9 (or another signal) of one process; resolves once it is gone. */
  async kill(key: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc(key);
    await proc.server?.stop(signal);
    proc.server = null;
  }

  pid(key: string): number | undefined {
    const server = this.proc(key).server;
    return server?.running ? server.pid : undefined;
  }

  /** Resident memory of every running Ebb process, MB, by key. */
  rss(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, proc] of this.procs)
      if (proc.server?.running) {
        try {
          out[key] = rssMb(proc.server.pid);
        } catch {
          // exited between the check and the read
        }
      }
    return out;
  }

  /** The members whose echo service takes a new connection now. */
  async accepting(timeoutMs = 1000): Promise<string[]> {
    const results = await Promise.all(
      this.members.map(async (m) =>
        (await tryConnectWithin(m.address, this.echoPort, timeoutMs)) ? m.id : null,
      ),
    );
    return results.filter((id): id is string => id !== null);
  }

  address(member: string): string {
    return this.members.find((m) => m.id === member)!.address;
  }

  /** A command through the API, as `ebb pause|resume <member> --service <service>` sends it. */
  async command(
    action: 'pause' | 'resume',
    member: string,
    service = 'echo',
    timeoutMs = 20_000,
  ): Promise<{ status: number; applied: boolean; body: string }> {
    try {
      const res = await fetch(`${this.apiUrl}/v1/members/${member}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ service, reason: 'chaos' }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = await res.text();
      const applied = res.ok && (JSON.parse(body) as { applied?: boolean }).applied === true;
      return { status: res.status, applied, body };
    } catch (err) {
      return { status: 0, applied: false, body: (err as Error).message };
    }
  }

  /** Opens `perMember` echo sessions on every member (directly, as clients that resolved earlier). */
  async hold(perMember: number): Promise<HeldSession[]> {
    const sessions: HeldSession[] = [];
    for (const m of this.members)
      for (let i = 0; i < perMember; i++) {
        const socket = await openSocket(m.address, this.echoPort);
        const held: HeldSession = { member: m.id, socket, closedEarly: false };
        socket.once('close', () => (held.closedEarly = true));
        sessions.push(held);
      }
    return sessions;
  }

  async until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`chaos pool: ${what}: not within ${timeoutMs} ms`);
  }

  /** Ends every process by its PID. */
  async stop(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((key) => this.kill(key)));
  }

  /** Last resort when the run is ended abruptly: SIGKILL by PID, synchronously. */
  killAllNow(): void {
    for (const proc of this.procs.values()) if (proc.server?.running) proc.server.signal('SIGKILL');
  }

  /** The last lines of a process's output, for a report. */
  output(key: string): string {
    return this.proc(key).server?.output.slice(-2000) ?? '';
  }

  private proc(key: string): Proc {
    const proc = this.procs.get(key);
    if (!proc) throw new Error(`chaos pool: no process ${key}`);
    return proc;
  }
}

export interface HeldSession {
  member: string;
  socket: Socket;
  closedEarly: boolean;
}

/** Whether a held session still echoes; it is closed afterwards. */
export async function stillEchoes(session: HeldSession, n: number): Promise<boolean> {
  if (session.closedEarly) return false;
  try {
    const text = `chaos ${n}\n`;
    return (await roundTrip(session.socket, text, 5000)) === text;
  } catch {
    return false;
  } finally {
    session.socket.destroy();
  }
}

async function tryConnectWithin(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const outcome = await Promise.race([
    tryConnect(host, port),
    new Promise<string>((r) => setTimeout(() => r('timeout'), timeoutMs).unref()),
  ]);
  return outcome === 'connected';
}
