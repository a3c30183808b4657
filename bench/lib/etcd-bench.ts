/**
 * etcd for the benchmarks: the simulated members (`etcd-simulator.ts` in its own process) and the write
 * counters every etcd member exports on `/metrics`.
 */
import { join } from 'node:path';
import { busyIntervalMs, SimPattern, type SimReady, type SimStats } from './etcd-sim-protocol.ts';
import { root, type ManagedProcess } from '../../test/harness/managed-process.ts';
import { startNodeScript } from './processes.ts';

export { busyIntervalMs, SimPattern, type SimReady, type SimStats };

export interface SimulatorOptions {
  store: string;
  pool: string;
  members: number;
  pattern: SimPattern;
  service?: string;
  leaseTtlMs?: number;
  statusEveryMs?: number;
  clients?: number;
  maxSeconds?: number;
}

export class Simulator {
  readonly proc: ManagedProcess;
  readonly ready: SimReady;

  private constructor(proc: ManagedProcess, ready: SimReady) {
    this.proc = proc;
    this.ready = ready;
  }

  /** Starts the simulator and resolves once every simulated member's keys are written. */
  static async start(options: SimulatorOptions, timeoutMs = 120_000): Promise<Simulator> {
    const args = [
      '--store',
      options.store,
      '--pool',
      options.pool,
      '--members',
      String(options.members),
      '--pattern',
      options.pattern,
      '--service',
      options.service ?? 'sim',
      '--lease-ttl',
      String(options.leaseTtlMs ?? 5000),
      '--status-every',
      String(options.statusEveryMs ?? 3000),
      '--max-seconds',
      String(options.maxSeconds ?? 900),
      ...(options.clients ? ['--clients', String(options.clients)] : []),
    ];
    const proc = startNodeScript('etcd simulator', join(root, 'bench/lib/etcd-simulator.ts'), args, {
      maxOutput: 256 * 1024,
    });
    try {
      const match = await proc.waitForOutput(/sim-ready (\{.*\})/, timeoutMs);
      return new Simulator(proc, JSON.parse(match[1]!) as SimReady);
    } catch (err) {
      await proc.stop();
      throw err;
    }
  }

  /** The last `sim-stats` line the simulator printed (once a second). */
  latest(): SimStats | null {
    const lines = this.proc.output.match(/sim-stats \{.*\}/g);
    return lines ? (JSON.parse(lines[lines.length - 1]!.slice('sim-stats '.length)) as SimStats) : null;
  }

  stop(): Promise<void> {
    return this.proc.stop('SIGTERM', 10_000);
  }
}

/** Counters of the whole cluster from every member's `/metrics`. */
export interface EtcdCounters {
  /** `etcd_mvcc_put_total` (every put, in a txn or not), of the member that applied most: each applies all. */
  puts: number;
  deletes: number;
  txns: number;
  /** `etcd_server_proposals_committed_total` (raft entries), the highest member's. */
  proposals: number;
  /** `etcd_debugging_lease_renewed_total` summed over members (the leader renews; followers forward). */
  leaseRenewals: number;
  leaseGrants: number;
  /** LeaseKeepAlive messages the members received from clients (`grpc_server_msg_received_total`), summed. */
  keepaliveMessages: number;
  /** The highest member's current store revision. */
  revision: number;
  at: number;
}

export async function readEtcdCounters(endpoints: readonly string[]): Promise<EtcdCounters> {
  const texts = await Promise.all(
    endpoints.map(async (e) => {
      try {
        const res = await fetch(`http://${e}/metrics`, { signal: AbortSignal.timeout(5000) });
        return await res.text();
      } catch {
        return '';
      }
    }),
  );
  const values = (name: string) =>
    texts.map((text) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    });
  const max = (name: string) => Math.max(0, ...values(name));
  const sum = (name: string) => values(name).reduce((a, b) => a + b, 0);
  const keepalive = texts
    .map((text) => {
      const line = text
        .split('\n')
        .find((l) => l.startsWith('grpc_server_msg_received_total{') && l.includes('"LeaseKeepAlive"'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    })
    .reduce((a, b) => a + b, 0);
  return {
    puts: max('etcd_mvcc_put_total'),
    deletes: max('etcd_mvcc_delete_total'),
    txns: max('etcd_mvcc_txn_total'),
    proposals: max('etcd_server_proposals_committed_total'),
    leaseRenewals: sum('etcd_debugging_lease_renewed_total'),
    leaseGrants: sum('etcd_debugging_lease_granted_total'),
    keepaliveMessages: keepalive,
    revision: max('etcd_debugging_mvcc_current_revision'),
    at: performance.now(),
  };
}

/** Per-second rates between two readings. */
export function counterRates(before: EtcdCounters, after: EtcdCounters): Record<string, number> {
  const seconds = (after.at - before.at) / 1000;
  const rate = (k: keyof EtcdCounters) => (after[k] - before[k]) / seconds;
  return {
    seconds,
    puts: rate('puts'),
    deletes: rate('deletes'),
    txns: rate('txns'),
    proposals: rate('proposals'),
    leaseRenewals: rate('leaseRenewals'),
    leaseGrants: rate('leaseGrants'),
    keepaliveMessages: rate('keepaliveMessages'),
    revisions: rate('revision'),
  };
}
