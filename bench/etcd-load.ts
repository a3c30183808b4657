/**
 * etcd load (issue 5): how many writes a pool puts on etcd, per 1,000 members, and how that grows with the
 * number of members. Read from etcd itself: every member's `/metrics` before and after a fixed window.
 *
 *   node --disable-warning=ExperimentalWarning bench/etcd-load.ts [--runs 3] [--sizes 100,1000,3000]
 *        [--patterns idle,busy] [--seconds 10] [--no-calibrate] [--json]
 *
 * Each measurement starts a fresh real 3-member etcd cluster (test/harness/etcd-cluster.ts, etcd's own
 * defaults) and `bench/lib/etcd-simulator.ts`, which writes for N simulated members what N agents write
 * (src/service/member-agent.ts):
 *
 *   idle  per member a lease (TTL 5 s) that etcd3 keeps alive every TTL/3 = 1.67 s on its own stream, the
 *         agent key on it, the status once. An idle agent writes its status only when it changes, so after
 *         start-up the only traffic is keepalives: no raft writes at all.
 *   busy  the same, plus each member's session count changing all the time, so the agent writes its status
 *         as often as its coalescing allows: every 50 ms (20 puts/s per service, one in flight). The upper
 *         bound of what agents write; the offered rate is 20 × N puts/s.
 *   rewrite (only when asked) idle plus each member rewriting its status every 3 s: the churn that
 *         bench/dns-convergence.ts puts on the DNS and API processes.
 *
 * The window starts 3 s after every simulated member's keys are written (start-up is not counted). Counters:
 * `etcd_mvcc_put_total` (puts, in or out of transactions), `etcd_server_proposals_committed_total` (raft
 * entries: every write and lease grant/revoke), `etcd_debugging_lease_renewed_total` (keepalives the leader
 * renewed; not raft writes in etcd 3.4) and the LeaseKeepAlive messages the members received.
 *
 * Calibration (unless `--no-calibrate`): 3 real `ebb agent`s on etcd, idle and then busy (each member's
 * echo service gets a connection opened and closed every 10 ms), measured the same way, to check the
 * simulator writes what agents write.
 *
 * The calibration agents run with `agent.workers: 1` (pinned: the default is the CPU count).
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { clampNumber, eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { EbbDeployment } from './lib/ebb-deployment.ts';
import {
  busyIntervalMs,
  counterRates,
  readEtcdCounters,
  SimPattern,
  Simulator,
  type EtcdCounters,
} from './lib/etcd-bench.ts';
import { startEtcdCluster, type EtcdCluster } from './lib/etcd-cluster.ts';
import { writePoolLayout } from './lib/pool-layout.ts';
import { cpuSeconds, scratchDir } from './lib/processes.ts';
import { fixed, median, ratio, sum } from './lib/stats.ts';

const leaseTtlMs = 5000;
/** `--patterns rewrite`: each simulated member rewrites its status this often (the dns-convergence churn). */
const rewriteEveryMs = 3000;

interface Measurement {
  label: string;
  pattern: SimPattern;
  members: number;
  seconds: number;
  putsPerSecond: number;
  proposalsPerSecond: number;
  keepalivesPerSecond: number;
  keepaliveMessagesPerSecond: number;
  /** What the pattern asks for: keepalives members × 3 / TTL; busy puts members × 20. */
  expectedKeepalivesPerSecond: number;
  offeredPutsPerSecond: number;
  etcdCpuPercent: number;
  writerCpuPercent: number;
  putP50Ms: number | null;
  putP99Ms: number | null;
  putErrors: number;
  leasesLost: number;
  startupMs: number;
}

async function measureWindow(
  cluster: EtcdCluster,
  writerPids: number[],
  seconds: number,
): Promise<{ before: EtcdCounters; after: EtcdCounters; etcdCpu: number; writerCpu: number }> {
  const etcdPids = [0, 1, 2].map((i) => cluster.pid(i)!).filter(Boolean);
  const cpu = (pids: number[]) => pids.reduce((a, pid) => a + cpuSeconds(pid), 0);
  const before = await readEtcdCounters(cluster.endpoints);
  const e0 = cpu(etcdPids);
  const w0 = cpu(writerPids);
  await sleep(seconds * 1000);
  const after = await readEtcdCounters(cluster.endpoints);
  const elapsed = (after.at - before.at) / 1000;
  return {
    before,
    after,
    etcdCpu: ((cpu(etcdPids) - e0) / elapsed) * 100,
    writerCpu: ((cpu(writerPids) - w0) / elapsed) * 100,
  };
}

async function simulated(pattern: SimPattern, members: number, seconds: number): Promise<Measurement> {
  const cluster = await startEtcdCluster();
  try {
    const sim = await Simulator.start(
      {
        store: cluster.spec,
        pool: 'load',
        members,
        pattern,
        leaseTtlMs,
        statusEveryMs: rewriteEveryMs,
        maxSeconds: seconds + 300,
      },
      300_000,
    );
    try {
      await sleep(3000);
      const s0 = sim.latest();
      const w = await measureWindow(cluster, [sim.proc.pid], seconds);
      await sleep(1100); // the simulator's next stats line covers the window
      const s1 = sim.latest();
      const rates = counterRates(w.before, w.after);
      return {
        label: `${members} simulated, ${pattern}`,
        pattern,
        members,
        seconds: rates.seconds!,
        putsPerSecond: rates.puts!,
        proposalsPerSecond: rates.proposals!,
        keepalivesPerSecond: rates.leaseRenewals!,
        keepaliveMessagesPerSecond: rates.keepaliveMessages!,
        expectedKeepalivesPerSecond: (members * 3) / (leaseTtlMs / 1000),
        offeredPutsPerSecond:
          pattern === SimPattern.busy
            ? (members * 1000) / busyIntervalMs
            : pattern === SimPattern.rewrite
              ? (members * 1000) / rewriteEveryMs
              : 0,
        etcdCpuPercent: w.etcdCpu,
        writerCpuPercent: w.writerCpu,
        putP50Ms: s1?.putP50 ?? null,
        putP99Ms: s1?.putP99 ?? null,
        putErrors: (s1?.putErrors ?? 0) - (s0?.putErrors ?? 0),
        leasesLost: s1?.leasesLost ?? 0,
        startupMs: sim.ready.ms,
      };
    } finally {
      await sim.stop();
    }
  } finally {
    await cluster.stop();
  }
}

/** Opens and closes a connection to each address every `everyMs`, so the sessions count keeps changing. */
function churn(targets: Array<{ host: string; port: number }>, everyMs: number): () => Promise<void> {
  let stopped = false;
  const loops = targets.map(async (t) => {
    while (!stopped) {
      const started = performance.now();
      await new Promise<void>((done) => {
        const socket = connect({ host: t.host, port: t.port });
        const timer = setTimeout(() => socket.destroy(), 2000);
        socket.once('connect', () => socket.write('x'));
        socket.once('data', () => socket.end());
        socket.once('close', () => {
          clearTimeout(timer);
          done();
        });
        socket.once('error', () => {});
      });
      const wait = everyMs - (performance.now() - started);
      if (wait > 0) await sleep(wait);
    }
  });
  return async () => {
    stopped = true;
    await Promise.all(loops);
  };
}

async function calibration(seconds: number): Promise<Measurement[]> {
  const cluster = await startEtcdCluster();
  const dir = scratchDir('ebb-etcdload-');
  let deployment: EbbDeployment | null = null;
  try {
    const layout = await writePoolLayout({
      dir,
      store: cluster.spec,
      real: 3,
      services: [{ id: 'echo', upstream: 'builtin:echo' }],
      leaseTtl: `${leaseTtlMs / 1000}s`,
      agentWorkers: 1,
    });
    deployment = await EbbDeployment.start(layout, 'split', { agentsOnly: true, timeoutMs: 60_000 });
    const pids = deployment.processes.map((p) => p.pid);
    const out: Measurement[] = [];
    for (const pattern of [SimPattern.idle, SimPattern.busy]) {
      const stop =
        pattern === SimPattern.busy
          ? churn(
              layout.real.map((m) => ({ host: m.address, port: m.ports.echo! })),
              10,
            )
          : null;
      await sleep(3000);
      const w = await measureWindow(cluster, pids, seconds);
      await stop?.();
      const rates = counterRates(w.before, w.after);
      out.push({
        label: `3 real agents, ${pattern}`,
        pattern,
        members: 3,
        seconds: rates.seconds!,
        putsPerSecond: rates.puts!,
        proposalsPerSecond: rates.proposals!,
        keepalivesPerSecond: rates.leaseRenewals!,
        keepaliveMessagesPerSecond: rates.keepaliveMessages!,
        expectedKeepalivesPerSecond: (3 * 3) / (leaseTtlMs / 1000),
        offeredPutsPerSecond: pattern === SimPattern.busy ? (3 * 1000) / busyIntervalMs : 0,
        etcdCpuPercent: w.etcdCpu,
        writerCpuPercent: w.writerCpu,
        putP50Ms: null,
        putP99Ms: null,
        putErrors: 0,
        leasesLost: 0,
        startupMs: 0,
      });
      await sleep(1000);
    }
    return out;
  } finally {
    await deployment?.stop();
    await cluster.stop();
  }
}

function per1000(value: number, members: number): number {
  return (value * 1000) / members;
}

async function main(): Promise<void> {
  const bench = startBench('etcd-load', {
    numbers: { runs: [3, 1, 20], seconds: [10, 2, 300] },
    strings: { sizes: '100,1000,3000', patterns: 'idle,busy' },
    flags: ['no-calibrate'],
  });
  const { runs, seconds } = bench.numbers;
  const sizes = bench.strings.sizes
    .split(',')
    .map((v) => Math.round(clampNumber(v, [0, 1, 10_000])))
    .filter((v) => v > 0);
  const patterns = bench.strings.patterns
    .split(',')
    .filter((p): p is SimPattern => Object.values(SimPattern).includes(p as SimPattern));
  if (sizes.length === 0 || patterns.length === 0)
    throw new Error('--sizes N,… and --patterns idle,busy,rewrite');
  const log = bench.log;
  log(
    `etcd-load: ${runs} run(s) × sizes ${sizes.join(', ')} × ${patterns.join(', ')}, ${seconds} s windows, ` +
      `fresh 3-member etcd cluster each, lease TTL ${leaseTtlMs / 1000} s`,
  );

  const measurements: Measurement[][] = [];
  if (!bench.flags['no-calibrate']) {
    const runsOf: Measurement[][] = [];
    const calibrations = await eachRun(
      bench,
      runs,
      () => calibration(seconds),
      (ms) => ms.map(describe).join('; '),
      'calibration',
    );
    for (const ms of calibrations) ms.forEach((m, i) => (runsOf[i] ??= []).push(m));
    measurements.push(...runsOf);
  }
  for (const pattern of patterns) {
    for (const size of sizes)
      measurements.push(await eachRun(bench, runs, () => simulated(pattern, size, seconds), describe));
  }

  const rows = measurements.map((ms) => {
    const m = ms[0]!;
    const med = (f: (x: Measurement) => number) => median(ms.map(f));
    const puts = med((x) => x.putsPerSecond);
    const keepalives = med((x) => x.keepalivesPerSecond);
    return {
      label: m.label,
      pattern: m.pattern,
      members: m.members,
      runs: ms.length,
      putsPerSecond: puts,
      putsPerSecondPer1000: per1000(puts, m.members),
      proposalsPerSecond: med((x) => x.proposalsPerSecond),
      proposalsPerSecondPer1000: per1000(
        med((x) => x.proposalsPerSecond),
        m.members,
      ),
      keepalivesPerSecond: keepalives,
      keepalivesPerSecondPer1000: per1000(keepalives, m.members),
      keepaliveMessagesPerSecond: med((x) => x.keepaliveMessagesPerSecond),
      expectedKeepalivesPerSecond: m.expectedKeepalivesPerSecond,
      offeredPutsPerSecond: m.offeredPutsPerSecond,
      putsAchievedShare: m.offeredPutsPerSecond > 0 ? ratio(puts, m.offeredPutsPerSecond) : null,
      etcdCpuPercent: med((x) => x.etcdCpuPercent),
      writerCpuPercent: med((x) => x.writerCpuPercent),
      putP50Ms: median(ms.map((x) => x.putP50Ms ?? Number.NaN).filter(Number.isFinite)),
      putP99Ms: median(ms.map((x) => x.putP99Ms ?? Number.NaN).filter(Number.isFinite)),
      putErrors: sum(ms, (x) => x.putErrors),
      leasesLost: sum(ms, (x) => x.leasesLost),
      startupMs: med((x) => x.startupMs),
    };
  });

  const doc = { benchmark: 'etcd-load', machine: bench.machine, runs, seconds, leaseTtlMs, rows };
  const errors = sum(rows, (r) => r.putErrors);
  const lost = sum(rows, (r) => r.leasesLost);
  report(
    bench,
    doc,
    [
      [
        'writer (median of runs)',
        'puts/s',
        'per 1k members',
        'offered',
        'ratio',
        'raft/s',
        'keepalives/s',
        'per 1k',
        'expected',
        'etcd CPU',
        'writer CPU',
        'put p50/p99 ms',
      ],
      ...rows.map((r) => [
        r.label,
        fixed(r.putsPerSecond, 1),
        fixed(r.putsPerSecondPer1000, 1),
        r.offeredPutsPerSecond > 0 ? fixed(r.offeredPutsPerSecond, 0) : '—',
        r.putsAchievedShare !== null ? fixed(r.putsAchievedShare) : '—',
        fixed(r.proposalsPerSecond, 1),
        fixed(r.keepalivesPerSecond, 0),
        fixed(r.keepalivesPerSecondPer1000, 0),
        fixed(r.expectedKeepalivesPerSecond, 0),
        `${fixed(r.etcdCpuPercent, 0)}%`,
        `${fixed(r.writerCpuPercent, 0)}%`,
        `${fixed(r.putP50Ms, 1)}/${fixed(r.putP99Ms, 1)}`,
      ]),
    ],
    [
      'puts/s: etcd_mvcc_put_total; raft/s: etcd_server_proposals_committed_total; keepalives/s: leases renewed ' +
        '(etcd_debugging_lease_renewed_total, leader only, not raft writes in etcd 3.4); expected: members × 3 / TTL. ' +
        'busy: offered = members × 20 puts/s (one status write per 50 ms per service); ratio = achieved / offered. ' +
        'etcd CPU: the 3 members together, % of one core; writer: the simulator (or the 3 agents).',
      ...(errors || lost ? [`put errors in the windows: ${errors}; leases lost: ${lost}`] : []),
    ],
  );
}

function describe(m: Measurement): string {
  return (
    `${m.label}: ${fixed(m.putsPerSecond, 1)} puts/s (${fixed(per1000(m.putsPerSecond, m.members), 1)} per 1k members` +
    (m.offeredPutsPerSecond ? ` of ${fixed(m.offeredPutsPerSecond, 0)} offered` : '') +
    `), raft ${fixed(m.proposalsPerSecond, 1)}/s, keepalives ${fixed(m.keepalivesPerSecond, 0)}/s ` +
    `(expected ${fixed(m.expectedKeepalivesPerSecond, 0)}), etcd CPU ${fixed(m.etcdCpuPercent, 0)}%, ` +
    `writer CPU ${fixed(m.writerCpuPercent, 0)}%` +
    (m.putP50Ms !== null
      ? `, put p50/p99 ${fixed(m.putP50Ms ?? Number.NaN, 1)}/${fixed(m.putP99Ms ?? Number.NaN, 1)} ms`
      : '') +
    (m.startupMs ? `, start-up ${fixed(m.startupMs / 1000, 1)} s` : '')
  );
}

await runBench(main);
