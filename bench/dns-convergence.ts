/**
 * SPEC §9 "DNS convergence": the time from `pause` returning (API `POST /v1/members/:m/pause`, 200) to the
 * first answer of Ebb's DNS server that no longer contains the member, p50/p99. SPEC §4.1: DNS follows
 * changes within 100 ms — the target printed beside.
 *
 *   node --disable-warning=ExperimentalWarning bench/dns-convergence.ts [--runs 3] [--cycles 40]
 *        [--store all|sqlite|etcd] [--etcd-runs N] [--simulated 1000] [--status-every 3000]
 *        [--etcd-query service|pool-tcp] [--etcd-max-txn-ops N] [--max-seconds 900] [--json]
 *
 * Modes (each run starts them afresh):
 *
 *   sqlite-up     `ebb up` on SQLite: DNS answers from the same read model the API waited on
 *   sqlite-split  `ebb agent` ×3, `ebb dns`, `ebb api` as separate processes on one SQLite file: the DNS
 *                 process learns of the change by its own poll of the file (every 10 ms)
 *   etcd-split    the same processes on a real 3-member etcd cluster (test/harness/etcd-cluster.ts), with
 *                 `--simulated` (1,000) more members heartbeating: `bench/lib/etcd-simulator.ts` holds a
 *                 lease per simulated member, writes its agent and status keys, and rewrites each status
 *                 every `--status-every` ms (churn the DNS and API processes must follow). No agent runs
 *                 for them; 3 real agents serve 3 real members.
 *
 * Each cycle pauses the primary service (`echo`) of one real member (m1, m2, m3 in turn; never two), then
 * queries the DNS server in a tight loop — one query in flight, a new one ~1 ms after each answer, bounded by
 * `--max-wait` ms and 5,000 queries — until an answer lacks the member's address; then resumes it and
 * waits, the same way, for the address to come back (the resume figure).
 *
 * The name asked: `A <fqdn>` over UDP on SQLite (3 members). With 1,000 simulated members `A <fqdn>` has
 * 1,003 records, which does not fit in UDP (the server sets TC): `--etcd-query service` (default) asks
 * `A echo.<fqdn>` over UDP — `echo` is a service only the 3 real members have — and `pool-tcp` asks the full
 * `A <fqdn>` over one TCP connection (1,003 records per answer, a 16 KB response).
 *
 * `--etcd-max-txn-ops N`
 * starts etcd with a higher limit of operations per transaction (0, the default: etcd's own, 128); builds
 * of Ebb whose pause transaction compared every member's agent key needed it past ~124 members.
 *
 * Every agent runs with `agent.workers: 1` (pinned: the default is the CPU count; the echo is builtin
 * and not threaded anyway) and `dns.workers` at its default, 1.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { clampNumber, eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { DnsProbe, type DnsAnswer } from './lib/dns-probe.ts';
import { apiCommandTimed, EbbDeployment, type DeploymentMode } from './lib/ebb-deployment.ts';
import { SimPattern, Simulator } from './lib/etcd-bench.ts';
import { startEtcdCluster, type EtcdCluster } from './lib/etcd-cluster.ts';
import { writePoolLayout, type PoolLayout } from './lib/pool-layout.ts';
import { cpuSeconds, scratchDir } from './lib/processes.ts';
import { fixed, median, percentile, ratio, runPercentiles, sum } from './lib/stats.ts';

const targetMs = 100;
const maxQueriesPerWait = 5000;
const Mode = { sqliteUp: 'sqlite-up', sqliteSplit: 'sqlite-split', etcdSplit: 'etcd-split' } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

interface Options {
  cycles: number;
  simulated: number;
  statusEveryMs: number;
  etcdQuery: 'service' | 'pool-tcp';
  maxWaitMs: number;
  holdMs: number;
  maxSeconds: number;
  /** etcd's --max-txn-ops for the cluster; 0: etcd's default (128). */
  maxTxnOps: number;
  log: (line: string) => void;
}

interface RunResult {
  mode: Mode;
  query: string;
  cycles: number;
  /** pause returned → first answer without the member, ms. */
  convergeMs: number[];
  /** resume returned → first answer with the member again, ms. */
  resumeConvergeMs: number[];
  /** Answers that still held the member after pause returned, per cycle. */
  staleAnswers: number[];
  pauseMs: number[];
  notConverged: number;
  lostQueries: number;
  /** Round trips of the queries while cycling (each convergence figure includes one). */
  queryRttMs: number[];
  /** Round trips of the queries before the first cycle (no command under way). */
  idleRttMs: number[];
  /** % of one core over the cycles, per process (Ebb's, the simulator, each etcd member). */
  cpuPercent: Record<string, number>;
  simulatorPuts: number | null;
  simulatorPutErrors: number | null;
}

/** Queries until `done(answer)` holds; bounded in count and time. Lost UDP queries are retried. */
async function queryUntil(
  probe: DnsProbe,
  name: string,
  since: number,
  maxWaitMs: number,
  done: (answer: DnsAnswer) => boolean,
  rtts: number[],
): Promise<{ at: number | null; answers: number; lost: number }> {
  let answers = 0;
  let lost = 0;
  for (let i = 0; i < maxQueriesPerWait && performance.now() - since < maxWaitMs; i++) {
    const sentAt = performance.now();
    let answer: DnsAnswer;
    try {
      answer = await probe.query(name, 'A', 250);
    } catch {
      lost++;
      continue;
    }
    if (answer.truncated) {
      throw new Error(
        `the answer for ${name} is truncated over ${probe.transport}: use --etcd-query service or pool-tcp`,
      );
    }
    if (rtts.length < 20_000) rtts.push(answer.rttMs);
    if (done(answer)) return { at: answer.receivedAt, answers, lost };
    answers++;
    // About 1 ms between queries (setTimeout's resolution): a tight loop that leaves the machine some room.
    const wait = 1 - (performance.now() - sentAt);
    await sleep(wait > 0 ? wait : 0);
  }
  return { at: null, answers, lost };
}

async function oneRun(mode: Mode, o: Options): Promise<RunResult> {
  const dir = scratchDir('ebb-dnsconv-');
  let cluster: EtcdCluster | null = null;
  let simulator: Simulator | null = null;
  let deployment: EbbDeployment | null = null;
  const probes: DnsProbe[] = [];
  try {
    let store: string | undefined;
    if (mode === Mode.etcdSplit) {
      cluster = await startEtcdCluster({
        extraArgs: o.maxTxnOps > 0 ? [`--max-txn-ops=${o.maxTxnOps}`] : [],
      });
      store = cluster.spec;
    }
    const layout: PoolLayout = await writePoolLayout({
      dir,
      ...(store ? { store } : {}),
      real: 3,
      services: [{ id: 'echo', upstream: 'builtin:echo' }],
      simulated: mode === Mode.etcdSplit ? o.simulated : 0,
      agentWorkers: 1,
    });
    if (cluster && o.simulated > 0) {
      o.log(`  ${mode}: simulating ${o.simulated} members on etcd…`);
      simulator = await Simulator.start({
        store: cluster.spec,
        pool: layout.name,
        members: o.simulated,
        pattern: o.statusEveryMs > 0 ? SimPattern.rewrite : SimPattern.idle,
        statusEveryMs: o.statusEveryMs,
        service: layout.simService,
        maxSeconds: o.maxSeconds + 120,
      });
    }
    const deployMode: DeploymentMode = mode === Mode.sqliteUp ? 'up' : 'split';
    deployment = await EbbDeployment.start(layout, deployMode, { timeoutMs: 60_000 });
    const real = layout.real;
    await deployment.waitAccepting(
      real.map((m) => m.id),
      'echo',
      60_000,
    );

    const poolTcp = mode === Mode.etcdSplit && o.etcdQuery === 'pool-tcp';
    const serviceName = mode === Mode.etcdSplit && !poolTcp;
    const name = serviceName ? `echo.${layout.fqdn}` : layout.fqdn;
    const probe = new DnsProbe(layout.dns.host, layout.dns.port, poolTcp ? 'tcp' : 'udp');
    probes.push(probe);
    await probe.open();
    const query = `A ${name} over ${probe.transport}`;

    // Every real member in the answer before the first cycle (bounded).
    const rtts: number[] = [];
    const allIn = await queryUntil(
      probe,
      name,
      performance.now(),
      30_000,
      (a) => real.every((m) => a.addresses.includes(m.address)),
      rtts,
    );
    if (allIn.at === null) throw new Error(`${mode}: the real members never all appeared in ${query}`);
    if (poolTcp) {
      const full = await probe.query(name, 'A', 2000);
      o.log(`  ${mode}: ${query} answers ${full.addresses.length} records`);
    }
    await sleep(1000); // let the start-up writes settle
    // The DNS round trip with no command under way: 200 queries, ~1 ms apart.
    const idleRtts: number[] = [];
    for (let i = 0; i < 200; i++) {
      const answer = await probe.query(name, 'A', 1000).catch(() => null);
      if (answer) idleRtts.push(answer.rttMs);
      await sleep(1);
    }
    rtts.length = 0;

    const result: RunResult = {
      mode,
      query,
      cycles: 0,
      convergeMs: [],
      resumeConvergeMs: [],
      staleAnswers: [],
      pauseMs: [],
      notConverged: 0,
      lostQueries: 0,
      queryRttMs: rtts,
      idleRttMs: idleRtts,
      cpuPercent: {},
      simulatorPuts: null,
      simulatorPutErrors: null,
    };
    const watched: Array<[string, number]> = [
      ...deployment.processes.map((p): [string, number] => [p.name, p.pid]),
      ...(simulator ? [['etcd simulator', simulator.proc.pid] as [string, number]] : []),
      ...(cluster ? [0, 1, 2].map((i): [string, number] => [`etcd member ${i}`, cluster!.pid(i)!]) : []),
    ];
    const cpuBefore = watched.map(([, pid]) => cpuSeconds(pid));
    const simBefore = simulator?.latest() ?? null;
    const started = performance.now();
    const deadline = started + o.maxSeconds * 1000;
    for (let c = 0; c < o.cycles && performance.now() < deadline; c++) {
      const member = real[c % real.length]!;
      const t = performance.now();
      const { answer, returnedAt } = await apiCommandTimed(layout.apiUrl, member.id, 'pause', {
        service: 'echo',
      });
      result.pauseMs.push(returnedAt - t);
      if (answer.applied !== true) o.log(`  warning: pause of ${member.id} returned applied=false`);
      const gone = await queryUntil(
        probe,
        name,
        returnedAt,
        o.maxWaitMs,
        (a) => !a.addresses.includes(member.address),
        rtts,
      );
      result.lostQueries += gone.lost;
      if (gone.at === null) result.notConverged++;
      else {
        result.convergeMs.push(gone.at - returnedAt);
        result.staleAnswers.push(gone.answers);
      }
      const resumed = await apiCommandTimed(layout.apiUrl, member.id, 'resume', { service: 'echo' });
      const back = await queryUntil(
        probe,
        name,
        resumed.returnedAt,
        o.maxWaitMs,
        (a) => a.addresses.includes(member.address),
        rtts,
      );
      result.lostQueries += back.lost;
      if (back.at === null) {
        // Not back in time: wait for it (bounded) so the next cycle starts from a full answer.
        const late = await queryUntil(
          probe,
          name,
          performance.now(),
          10_000,
          (a) => a.addresses.includes(member.address),
          rtts,
        );
        if (late.at === null) throw new Error(`${member.id} did not come back into ${query} after resume`);
      } else result.resumeConvergeMs.push(back.at - resumed.returnedAt);
      result.cycles++;
      // A random gap, so pauses do not keep the same phase against the store's 10 ms poll.
      await sleep(o.holdMs * (0.5 + Math.random()));
    }
    const elapsed = (performance.now() - started) / 1000;
    watched.forEach(([label, pid], i) => {
      result.cpuPercent[label] = ((cpuSeconds(pid) - cpuBefore[i]!) / elapsed) * 100;
    });
    const simAfter = simulator?.latest() ?? null;
    if (simBefore && simAfter) {
      result.simulatorPuts = (simAfter.puts - simBefore.puts) / ((simAfter.at - simBefore.at) / 1000);
      result.simulatorPutErrors = simAfter.putErrors - simBefore.putErrors;
    }
    return result;
  } finally {
    for (const p of probes) p.close();
    await deployment?.stop();
    await simulator?.stop();
    await cluster?.stop();
  }
}

interface ModeSummary {
  mode: Mode;
  query: string;
  runs: number;
  cycles: number;
  convergeMs: { p50: number; p99: number; max: number };
  resumeConvergeMs: { p50: number; p99: number };
  staleAnswersPerCycle: { median: number; max: number };
  pauseMs: { p50: number; p99: number };
  queryRttMs: { p50: number; p99: number };
  idleRttMs: { p50: number; p99: number };
  notConverged: number;
  lostQueries: number;
  cpuPercent: Record<string, number>;
  simulatorPutsPerSecond: number | null;
  targetP99Ms: number;
  ratioP99ToTarget: number;
  verdict: 'meets target' | 'misses target';
}

function summarise(mode: Mode, results: RunResult[]): ModeSummary {
  const p99 = median(results.map((r) => percentile(r.convergeMs, 99)));
  const sims = results.map((r) => r.simulatorPuts).filter((v): v is number => v !== null);
  return {
    mode,
    query: results[0]!.query,
    runs: results.length,
    cycles: sum(results, (r) => r.cycles),
    convergeMs: {
      p50: median(results.map((r) => median(r.convergeMs))),
      p99,
      max: Math.max(...results.flatMap((r) => r.convergeMs)),
    },
    resumeConvergeMs: runPercentiles(results, (r) => r.resumeConvergeMs),
    staleAnswersPerCycle: {
      median: median(results.flatMap((r) => r.staleAnswers)),
      max: Math.max(...results.flatMap((r) => r.staleAnswers)),
    },
    pauseMs: runPercentiles(results, (r) => r.pauseMs),
    queryRttMs: runPercentiles(results, (r) => r.queryRttMs),
    idleRttMs: runPercentiles(results, (r) => r.idleRttMs),
    notConverged: sum(results, (r) => r.notConverged),
    lostQueries: sum(results, (r) => r.lostQueries),
    cpuPercent: Object.fromEntries(
      Object.keys(results[0]!.cpuPercent).map((k) => [k, median(results.map((r) => r.cpuPercent[k] ?? 0))]),
    ),
    simulatorPutsPerSecond: sims.length ? median(sims) : null,
    targetP99Ms: targetMs,
    ratioP99ToTarget: ratio(p99, targetMs),
    verdict: p99 <= targetMs && results.every((r) => r.notConverged === 0) ? 'meets target' : 'misses target',
  };
}

async function main(): Promise<void> {
  const bench = startBench('dns-convergence', {
    numbers: {
      runs: [3, 1, 20],
      cycles: [40, 1, 1000],
      simulated: [1000, 0, 5000],
      'status-every': [3000, 0, 60_000],
      'max-wait': [2000, 100, 10_000],
      hold: [100, 0, 5000],
      'max-seconds': [900, 10, 3600],
      'etcd-max-txn-ops': [0, 0, 100_000],
    },
    strings: { store: 'all', 'etcd-query': 'service' },
    optional: ['etcd-runs'],
  });
  const n = bench.numbers;
  const runs = n.runs;
  // The etcd mode is the slow one (a cluster and 1,000 leases per run): its own count, --runs by default.
  const etcdRuns = clampNumber(bench.optional['etcd-runs'], [runs, 1, 20]);
  const log = bench.log;
  const o: Options = {
    cycles: n.cycles,
    simulated: n.simulated,
    statusEveryMs: n['status-every'],
    etcdQuery: bench.strings['etcd-query'] === 'pool-tcp' ? 'pool-tcp' : 'service',
    maxWaitMs: n['max-wait'],
    holdMs: n.hold,
    maxSeconds: n['max-seconds'],
    maxTxnOps: n['etcd-max-txn-ops'],
    log,
  };
  const store = bench.strings.store;
  const modes: Mode[] = [
    ...(store === 'all' || store === 'sqlite' ? [Mode.sqliteUp, Mode.sqliteSplit] : []),
    ...(store === 'all' || store === 'etcd' ? [Mode.etcdSplit] : []),
  ];
  if (modes.length === 0) throw new Error('--store: all, sqlite or etcd');
  log(
    `dns-convergence: ${runs} run(s) (etcd: ${etcdRuns}) × ${o.cycles} pause/resume cycles per mode (${modes.join(', ')}); ` +
      `etcd: ${o.simulated} simulated members, status rewrite every ${o.statusEveryMs || '∞'} ms each`,
  );
  if (modes.includes(Mode.etcdSplit) && o.maxTxnOps > 0)
    log(`note: etcd runs with --max-txn-ops=${o.maxTxnOps}`);

  const summaries: ModeSummary[] = [];
  for (const mode of modes) {
    const results = await eachRun(
      bench,
      mode === Mode.etcdSplit ? etcdRuns : runs,
      () => oneRun(mode, o),
      (res) =>
        `${res.cycles} cycles, ${res.query}: converge p50 ${fixed(median(res.convergeMs))} ms ` +
        `p99 ${fixed(percentile(res.convergeMs, 99))} ms max ${fixed(Math.max(...res.convergeMs))} ms; ` +
        `resume p50 ${fixed(median(res.resumeConvergeMs))} ms; pause p50 ${fixed(median(res.pauseMs))} ms; ` +
        `not converged ${res.notConverged}; DNS rtt p50 ${fixed(median(res.queryRttMs))} ms (idle ${fixed(median(res.idleRttMs))} ms)` +
        (res.simulatorPuts !== null ? `; simulator ${fixed(res.simulatorPuts, 0)} status puts/s` : ''),
      mode,
    );
    summaries.push(summarise(mode, results));
  }

  const doc = {
    benchmark: 'dns-convergence',
    machine: bench.machine,
    runs,
    cyclesPerRun: o.cycles,
    simulatedMembers: o.simulated,
    simulatedStatusRewriteMs: o.statusEveryMs,
    targetP99Ms: targetMs,
    modes: summaries,
    verdict: summaries.every((s) => s.verdict === 'meets target') ? 'meets target' : 'misses target',
  };
  const rows: string[][] = [['figure (median of runs)', 'ebb', 'target', 'ratio']];
  for (const s of summaries) {
    rows.push(
      [`${s.mode}: pause returned → answer without member, p50 (ms)`, fixed(s.convergeMs.p50), '—', '—'],
      [`${s.mode}: … p99 (ms)`, fixed(s.convergeMs.p99), `≤ ${targetMs}`, fixed(s.ratioP99ToTarget)],
      [`${s.mode}: … max over all cycles (ms)`, fixed(s.convergeMs.max), '—', '—'],
      [
        `${s.mode}: resume returned → member back, p50 / p99 (ms)`,
        `${fixed(s.resumeConvergeMs.p50)} / ${fixed(s.resumeConvergeMs.p99)}`,
        '—',
        '—',
      ],
      [
        `${s.mode}: stale answers after pause returned, median / max`,
        `${fixed(s.staleAnswersPerCycle.median, 0)} / ${fixed(s.staleAnswersPerCycle.max, 0)}`,
        '—',
        '—',
      ],
      [
        `${s.mode}: pause latency p50 / p99 (ms)`,
        `${fixed(s.pauseMs.p50)} / ${fixed(s.pauseMs.p99)}`,
        '—',
        '—',
      ],
    );
  }
  report(bench, doc, rows, [
    ...summaries.flatMap((s) => [
      `${s.mode}: ${s.cycles} cycles, query ${s.query}; DNS round trip p50/p99 ${fixed(s.queryRttMs.p50)}/${fixed(s.queryRttMs.p99)} ms ` +
        `while cycling, ${fixed(s.idleRttMs.p50)}/${fixed(s.idleRttMs.p99)} ms before; lost queries ${s.lostQueries}, ` +
        `not converged within the wait ${s.notConverged}` +
        (s.simulatorPutsPerSecond !== null
          ? `, simulated members' status puts ${fixed(s.simulatorPutsPerSecond, 0)}/s`
          : '') +
        ` — ${s.verdict}`,
      `  CPU over the cycles (% of a core): ${Object.entries(s.cpuPercent)
        .map(([k, v]) => `${k} ${fixed(v, 0)}`)
        .join(', ')}`,
    ]),
    `target: SPEC §4.1, DNS follows changes within ${targetMs} ms (p99); no peer`,
  ]);
  if (summaries.some((s) => s.notConverged > 0)) process.exitCode = 1;
}

await runBench(main);
