/**
 * Simulated members for the etcd benchmarks: one process that does, for N members at once, what N idle or
 * busy `ebb agent`s write to the store — without running any of them. Per member it holds a lease (etcd3
 * keeps it alive every TTL/3 on its own stream, exactly as an agent's `EtcdStore` does), puts the agent key
 * (`PoolKeys.agent`) on the lease and the service's status (`PoolKeys.status`, a `ServiceStatus` JSON, state
 * running, accepting) as the agent does (the status is not on the lease). Then, by `--pattern`:
 *
 *   idle     nothing more (an idle agent writes its status only when it changes)
 *   rewrite  each member rewrites its status every `--status-every` ms (phases spread evenly): churn
 *   busy     each member's session count changes all the time, so its status is written every 50 ms
 *            (the agent's coalescing interval), one write in flight per member
 *
 * A lost lease is granted again and the agent key rewritten, as `MemberAgent.holdLease()` does.
 *
 *   node bench/lib/etcd-simulator.ts --store etcd://h:p,... --pool NAME --members N [--service sim]
 *        [--lease-ttl 5000] [--pattern idle|rewrite|busy] [--status-every 3000] [--clients K]
 *        [--max-seconds 900]
 *
 * Prints `sim-ready {...}` once every member's keys are written, then `sim-stats {...}` every second
 * (cumulative counts, put latency of the last second). Ends on SIGTERM/SIGINT or after --max-seconds,
 * without revoking (the leases run out, as a crashed agent's do).
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore, PoolKeys, type Lease, type Store } from '../../src/store/index.ts';
import {
  busyIntervalMs,
  simulatedId,
  SimPattern,
  type SimReady,
  type SimStats,
} from './etcd-sim-protocol.ts';
import { percentile } from './stats.ts';

class SimMember {
  readonly id: string;
  lease: Lease | null = null;
  sessions = 0;
  accepted = 0;
  constructor(id: string) {
    this.id = id;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      store: { type: 'string' },
      pool: { type: 'string' },
      members: { type: 'string', default: '1000' },
      service: { type: 'string', default: 'sim' },
      'lease-ttl': { type: 'string', default: '5000' },
      pattern: { type: 'string', default: 'idle' },
      'status-every': { type: 'string', default: '3000' },
      clients: { type: 'string' },
      'max-seconds': { type: 'string', default: '900' },
    },
  });
  if (!values.store?.startsWith('etcd://') || !values.pool)
    throw new Error('--store etcd://… and --pool needed');
  const count = Math.min(20_000, Math.max(1, Number(values.members) || 1000));
  const pattern = values.pattern as SimPattern;
  if (!Object.values(SimPattern).includes(pattern)) throw new Error(`--pattern: idle, rewrite or busy`);
  const ttlMs = Math.max(1000, Number(values['lease-ttl']) || 5000);
  const statusEveryMs = Math.max(100, Number(values['status-every']) || 3000);
  // Real agents each have their own connection; spread the members over several clients (one per 250).
  const clients = Math.min(32, Math.max(1, Number(values.clients) || Math.ceil(count / 250)));
  const maxMs = Math.min(3600, Math.max(5, Number(values['max-seconds']) || 900)) * 1000;
  const keys = new PoolKeys(values.pool);
  const service = values.service!;
  const stores: Store[] = [];
  for (let i = 0; i < clients; i++) stores.push(await openStore(values.store));
  const storeOf = (index: number) => stores[index % clients]!;

  let stopping = false;
  const stats = { puts: 0, putErrors: 0, grants: 0, leasesLost: 0, inFlight: 0 };
  let latencies: number[] = [];
  const members = Array.from({ length: count }, (_, i) => new SimMember(simulatedId(i)));

  const put = async (store: Store, key: string, value: string, lease?: Lease) => {
    stats.inFlight++;
    const t = performance.now();
    try {
      await store.put(key, value, lease ? { lease } : {});
      stats.puts++;
      if (latencies.length < 50_000) latencies.push(performance.now() - t);
    } catch (err) {
      stats.putErrors++;
      throw err;
    } finally {
      stats.inFlight--;
    }
  };
  const statusValue = (m: SimMember) =>
    JSON.stringify({
      state: 'running',
      accepting: true,
      sessions: m.sessions,
      drained: false,
      forced: 0,
      accepted: m.accepted,
      upstreamFailures: 0,
      intentRevision: 0,
      drainStartedAt: null,
      drainedAt: null,
      error: null,
      at: Date.now(),
    });
  const writeStatus = (index: number) => {
    const m = members[index]!;
    return put(storeOf(index), keys.status(m.id, service), statusValue(m));
  };
  const holdLease = async (index: number): Promise<void> => {
    const m = members[index]!;
    const store = storeOf(index);
    const lease = await store.grantLease(ttlMs);
    stats.grants++;
    const info = { pid: process.pid, host: hostname(), startedAt: Date.now(), simulated: true };
    await put(store, keys.agent(m.id), JSON.stringify(info), lease);
    m.lease = lease;
    lease.onLost(() => {
      stats.leasesLost++;
      m.lease = null;
      if (stopping) return;
      const retry = () => {
        if (stopping) return;
        holdLease(index).catch(() => setTimeout(retry, 1000).unref());
      };
      retry();
    });
  };

  // Start-up: at most 64 members at a time, as a pool whose agents start together would.
  const startedAt = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(64, count) }, async () => {
      while (next < count) {
        const index = next++;
        for (let attempt = 0; ; attempt++) {
          try {
            await holdLease(index);
            await writeStatus(index);
            break;
          } catch (err) {
            if (attempt >= 5) throw err;
            await sleep(200);
          }
        }
      }
    }),
  );
  process.stdout.write(
    `sim-ready ${JSON.stringify({ members: count, pattern, clients, ms: Math.round(performance.now() - startedAt) } satisfies SimReady)}\n`,
  );

  const timers: NodeJS.Timeout[] = [];
  const loops: Promise<void>[] = [];
  if (pattern === SimPattern.rewrite) {
    // Spread the members' rewrites evenly over the period: a tick every 10 ms writes the ones due.
    const tickMs = 10;
    let cursor = 0;
    let credit = 0;
    timers.push(
      setInterval(() => {
        credit += (count * tickMs) / statusEveryMs;
        while (credit >= 1) {
          credit--;
          const index = cursor++ % count;
          members[index]!.accepted++;
          writeStatus(index).catch(() => {});
        }
      }, tickMs),
    );
  } else if (pattern === SimPattern.busy) {
    for (let i = 0; i < count; i++) {
      loops.push(
        (async () => {
          await sleep(Math.random() * busyIntervalMs);
          while (!stopping) {
            const t = performance.now();
            const m = members[i]!;
            m.sessions = (m.sessions + 1) % 50;
            m.accepted++;
            await writeStatus(i).catch(() => sleep(200));
            const wait = busyIntervalMs - (performance.now() - t);
            if (wait > 0) await sleep(wait);
          }
        })(),
      );
    }
  }

  const report = () => {
    const window = latencies;
    latencies = [];
    const line: SimStats = {
      members: count,
      ...stats,
      putP50: percentile(window, 50),
      putP99: percentile(window, 99),
      at: Date.now(),
    };
    process.stdout.write(`sim-stats ${JSON.stringify(line)}\n`);
  };
  timers.push(setInterval(report, 1000));

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    setTimeout(stop, maxMs).unref();
  });
  stopping = true;
  for (const t of timers) clearInterval(t);
  report();
  await Promise.race([Promise.all(loops), sleep(2000)]);
  // Close without revoking: the leases expire with their TTL, as a crashed agent's do.
  await Promise.race([Promise.all(stores.map((s) => s.close())), sleep(3000)]);
}

try {
  await main();
  process.exit(0);
} catch (err) {
  process.stderr.write(`etcd-simulator: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
