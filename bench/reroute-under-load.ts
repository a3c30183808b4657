/**
 * Re-routing under load (SPEC §4, issue 3): steady sessions through the client connector (`ebb load`, in
 * its own process, exactly as a user runs it) against a demo-like pool while members are paused and resumed
 * one at a time. Every session must succeed: a paused member refuses new connects and the connector moves
 * on to the next member of the (cached) DNS answer; sessions already open on it drain normally.
 *
 *   node --disable-warning=ExperimentalWarning bench/reroute-under-load.ts [--runs 3] [--cycles 30]
 *        [--rate 200] [--hold 1000] [--paused 500] [--running 500] [--dns-ttl 5] [--json]
 *
 * Each run: `ebb up` on 3 members (m1–m3, loopback aliases) with a tcp `echo` service (`builtin:echo`) and
 * the pool's DNS TTL `--dns-ttl` s (as the demo: 5). `ebb load --rate R --hold H` starts R sessions/s, each
 * resolving SRV `_echo._tcp.<fqdn>` (answers kept for the TTL, as a stub resolver would), connecting to
 * the first member that accepts, echoing on open and before close, and holding the session H ms. Meanwhile
 * this process pauses m1, m2, m3 in turn through the API (never two at once), keeps each paused
 * `--paused` ms, resumes it, and waits `--running` ms, for `--cycles` cycles. The load runs for the cycles'
 * length plus 2 s, so it covers them all.
 *
 * Figures: failed sessions (must be 0: the exit status is 1 otherwise), accepted, re-tried (sessions that
 * reached a member only after another refused them), sessions/s accepted, pause latency.
 *
 * Ebb runs with `agent.workers: 1` (pinned: the default is the CPU count; the echo is builtin and not
 * threaded anyway).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EbbServer } from '../test/harness/ebb-process.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { apiCommandTimed, EbbDeployment } from './lib/ebb-deployment.ts';
import { writePoolLayout } from './lib/pool-layout.ts';
import { benchProcessOptions, cpuSeconds, scratchDir, track } from './lib/processes.ts';
import { fixed, median, runPercentiles, sum } from './lib/stats.ts';

interface LoadStats {
  started: number;
  accepted: number;
  failed: number;
  retried: number;
  active: number;
  completed: number;
  elapsedMs: number;
  failures: Record<string, number>;
}

interface Options {
  cycles: number;
  rate: number;
  holdMs: number;
  pausedMs: number;
  runningMs: number;
  dnsTtl: number;
  log: (line: string) => void;
}

interface RunResult {
  cycles: number;
  load: LoadStats;
  loadExit: number | null;
  sessionsPerSecond: number;
  pauseMs: number[];
  resumeMs: number[];
  notApplied: number;
  /** Sessions Ebb's listeners accepted, summed over members (its own count, from the pool status). */
  ebbAccepted: number;
  ebbCpuPercent: number;
}

function parseLoadJson(stdout: string): LoadStats {
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`ebb load printed no JSON:\n${stdout.slice(-2000)}`);
  return JSON.parse(stdout.slice(start)) as LoadStats;
}

async function oneRun(o: Options): Promise<RunResult> {
  const dir = scratchDir('ebb-reroute-');
  const layout = await writePoolLayout({
    dir,
    real: 3,
    services: [{ id: 'echo', upstream: 'builtin:echo' }],
    dnsTtl: o.dnsTtl,
    agentWorkers: 1,
  });
  const deployment = await EbbDeployment.start(layout, 'up');
  let load: EbbServer | null = null;
  try {
    const members = layout.real;
    await deployment.waitAccepting(
      members.map((m) => m.id),
      'echo',
    );
    const durationMs = o.cycles * (o.pausedMs + o.runningMs) + 2000;
    load = track(
      new EbbServer(
        [
          '--config',
          layout.configPath,
          '--json',
          'load',
          '--service',
          'echo',
          '--rate',
          String(o.rate),
          '--duration',
          `${durationMs}ms`,
          '--hold',
          `${o.holdMs}ms`,
        ],
        { ...benchProcessOptions(), name: 'ebb load', maxOutput: 1 << 20 },
      ),
    );
    const ebbPid = deployment.processes[0]!.pid;
    const cpuEbb0 = cpuSeconds(ebbPid);
    const started = performance.now();
    await sleep(1000); // sessions on every member before the first pause

    const pauseMs: number[] = [];
    const resumeMs: number[] = [];
    let notApplied = 0;
    let cycles = 0;
    // Bounded by count, by the load's own duration and by a deadline.
    const deadline = started + durationMs + 30_000;
    for (let c = 0; c < o.cycles && load.running && performance.now() < deadline; c++) {
      const member = members[c % members.length]!;
      let t = performance.now();
      const paused = await apiCommandTimed(layout.apiUrl, member.id, 'pause', { service: 'echo' });
      pauseMs.push(paused.returnedAt - t);
      if (paused.answer.applied !== true) notApplied++;
      await sleep(o.pausedMs);
      t = performance.now();
      const resumed = await apiCommandTimed(layout.apiUrl, member.id, 'resume', { service: 'echo' });
      resumeMs.push(resumed.returnedAt - t);
      if (resumed.answer.applied !== true) notApplied++;
      cycles++;
      await sleep(o.runningMs);
    }
    const loadExit = await load.waitForExit(durationMs + o.holdMs + 60_000);
    const elapsed = (performance.now() - started) / 1000;
    const stats = parseLoadJson(load.stdout);
    const pool = await deployment.pool();
    const ebbAccepted = pool.members
      .flatMap((m) => m.services)
      .filter((s) => s.id === 'echo')
      .reduce((a, s) => a + s.accepted, 0);
    return {
      cycles,
      load: stats,
      loadExit,
      // Over the time sessions were being started (the load's --duration), not the final hold.
      sessionsPerSecond: stats.accepted / (durationMs / 1000),
      pauseMs,
      resumeMs,
      notApplied,
      ebbAccepted,
      ebbCpuPercent: ((cpuSeconds(ebbPid) - cpuEbb0) / elapsed) * 100,
    };
  } finally {
    await load?.stop();
    await deployment.stop();
  }
}

async function main(): Promise<void> {
  const bench = startBench('reroute-under-load', {
    numbers: {
      runs: [3, 1, 20],
      cycles: [30, 1, 300],
      rate: [200, 1, 2000],
      hold: [1000, 0, 30_000],
      paused: [500, 20, 10_000],
      running: [500, 20, 10_000],
      'dns-ttl': [5, 0, 300],
    },
  });
  const n = bench.numbers;
  const runs = n.runs;
  const log = bench.log;
  const o: Options = {
    cycles: n.cycles,
    rate: n.rate,
    holdMs: n.hold,
    pausedMs: n.paused,
    runningMs: n.running,
    dnsTtl: n['dns-ttl'],
    log,
  };
  log(
    `reroute-under-load: ${runs} run(s); ebb load ${o.rate} sessions/s held ${o.holdMs} ms on 3 members (DNS TTL ${o.dnsTtl} s); ` +
      `${o.cycles} cycles pausing m1, m2, m3 in turn for ${o.pausedMs} ms, ${o.runningMs} ms between`,
  );

  const results = await eachRun(
    bench,
    runs,
    () => oneRun(o),
    (res) =>
      `${res.cycles} cycles; sessions started ${res.load.started}, accepted ${res.load.accepted}, failed ${res.load.failed}, ` +
      `retried ${res.load.retried} (${fixed(res.sessionsPerSecond, 1)}/s accepted); pause p50 ${fixed(median(res.pauseMs))} ms; ` +
      `Ebb counted ${res.ebbAccepted} accepted; ebb up CPU ${fixed(res.ebbCpuPercent, 0)}%` +
      (Object.keys(res.load.failures).length ? `; failures ${JSON.stringify(res.load.failures)}` : ''),
  );

  const total = (f: (r: RunResult) => number) => sum(results, f);
  const failed = total((r) => r.load.failed);
  const failures: Record<string, number> = {};
  for (const r of results)
    for (const [k, v] of Object.entries(r.load.failures)) failures[k] = (failures[k] ?? 0) + v;
  const summary = {
    benchmark: 'reroute-under-load',
    machine: bench.machine,
    runs,
    cyclesPerRun: o.cycles,
    rate: o.rate,
    holdMs: o.holdMs,
    dnsTtl: o.dnsTtl,
    cycles: total((r) => r.cycles),
    sessions: {
      started: total((r) => r.load.started),
      accepted: total((r) => r.load.accepted),
      failed,
      retried: total((r) => r.load.retried),
      completed: total((r) => r.load.completed),
    },
    failures,
    sessionsPerSecond: median(results.map((r) => r.sessionsPerSecond)),
    retriedShare:
      total((r) => r.load.retried) /
      Math.max(
        1,
        total((r) => r.load.accepted),
      ),
    pauseMs: runPercentiles(results, (r) => r.pauseMs),
    resumeMs: runPercentiles(results, (r) => r.resumeMs),
    notApplied: total((r) => r.notApplied),
    ebbAcceptedCounter: total((r) => r.ebbAccepted),
    ebbCpuPercent: median(results.map((r) => r.ebbCpuPercent)),
    loadExitCodes: results.map((r) => r.loadExit),
    target: 'failed sessions = 0',
    verdict: failed === 0 ? 'pass' : 'FAIL',
  };

  report(
    bench,
    summary,
    [
      ['figure (sum or median of runs)', 'ebb', 'target', 'ratio'],
      ['failed sessions', String(failed), '0', '—'],
      ['sessions accepted', String(summary.sessions.accepted), '—', '—'],
      [
        're-tried (reached a member after a refusal)',
        `${summary.sessions.retried} (${fixed(summary.retriedShare * 100, 1)}%)`,
        '—',
        '—',
      ],
      [
        'sessions/s accepted (median of runs) vs offered',
        fixed(summary.sessionsPerSecond, 1),
        `${o.rate}`,
        fixed(summary.sessionsPerSecond / o.rate),
      ],
      ['pause/resume cycles', String(summary.cycles), '—', '—'],
      [
        'pause latency p50 / p99 (ms)',
        `${fixed(summary.pauseMs.p50)} / ${fixed(summary.pauseMs.p99)}`,
        '—',
        '—',
      ],
      [
        'resume latency p50 / p99 (ms)',
        `${fixed(summary.resumeMs.p50)} / ${fixed(summary.resumeMs.p99)}`,
        '—',
        '—',
      ],
    ],
    [
      ...(failed > 0 ? [`failures by reason: ${JSON.stringify(failures)}`] : []),
      ...(summary.notApplied > 0 ? [`WARNING: ${summary.notApplied} command(s) returned applied=false`] : []),
      `Ebb's own count of accepted sessions: ${summary.ebbAcceptedCounter}; ebb up CPU ${fixed(summary.ebbCpuPercent, 0)}% of a core`,
      `verdict: ${summary.verdict} (failed sessions must be 0; the sessions/s column is the offered rate)`,
    ],
  );
  if (failed !== 0) process.exitCode = 1;
}

await runBench(main);
