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
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { apiCommandTimed, EbbDeployment } from './lib/ebb-deployment.ts';
import { writePoolLayout } from './lib/pool-layout.ts';
import {
  BenchProcess,
  cpuSeconds,
  machineNote,
  nodeBin,
  nodeFlags,
  root,
  runCleanups,
  scratchDir,
} from './lib/processes.ts';
import { fixed, median, percentile, table } from './lib/stats.ts';

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
  });
  const deployment = await EbbDeployment.start(layout, 'up');
  let load: BenchProcess | null = null;
  try {
    const members = layout.real;
    await deployment.waitAccepting(
      members.map((m) => m.id),
      'echo',
    );
    const durationMs = o.cycles * (o.pausedMs + o.runningMs) + 2000;
    load = new BenchProcess(
      'ebb load',
      nodeBin,
      [
        ...nodeFlags,
        join(root, 'bin/ebb.js'),
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
      { maxOutput: 1 << 20 },
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
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      cycles: { type: 'string', default: '30' },
      rate: { type: 'string', default: '200' },
      hold: { type: 'string', default: '1000' },
      paused: { type: 'string', default: '500' },
      running: { type: 'string', default: '500' },
      'dns-ttl': { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
    },
  });
  const clamp = (v: string | undefined, lo: number, hi: number, dflt: number) =>
    Math.min(hi, Math.max(lo, Number.isFinite(Number(v)) && v !== '' ? Number(v) : dflt));
  const runs = clamp(values.runs, 1, 20, 3);
  const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
  const o: Options = {
    cycles: clamp(values.cycles, 1, 300, 30),
    rate: clamp(values.rate, 1, 2000, 200),
    holdMs: clamp(values.hold, 0, 30_000, 1000),
    pausedMs: clamp(values.paused, 20, 10_000, 500),
    runningMs: clamp(values.running, 20, 10_000, 500),
    dnsTtl: clamp(values['dns-ttl'], 0, 300, 5),
    log,
  };
  const machine = machineNote();
  log(`machine: ${machine}`);
  log(
    `reroute-under-load: ${runs} run(s); ebb load ${o.rate} sessions/s held ${o.holdMs} ms on 3 members (DNS TTL ${o.dnsTtl} s); ` +
      `${o.cycles} cycles pausing m1, m2, m3 in turn for ${o.pausedMs} ms, ${o.runningMs} ms between`,
  );

  const results: RunResult[] = [];
  for (let r = 0; r < runs; r++) {
    const res = await oneRun(o);
    results.push(res);
    const l = res.load;
    log(
      `run ${r + 1}: ${res.cycles} cycles; sessions started ${l.started}, accepted ${l.accepted}, failed ${l.failed}, ` +
        `retried ${l.retried} (${fixed(res.sessionsPerSecond, 1)}/s accepted); pause p50 ${fixed(median(res.pauseMs))} ms; ` +
        `Ebb counted ${res.ebbAccepted} accepted; ebb up CPU ${fixed(res.ebbCpuPercent, 0)}%` +
        (Object.keys(l.failures).length ? `; failures ${JSON.stringify(l.failures)}` : ''),
    );
  }

  const sum = (f: (r: RunResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const failed = sum((r) => r.load.failed);
  const failures: Record<string, number> = {};
  for (const r of results)
    for (const [k, v] of Object.entries(r.load.failures)) failures[k] = (failures[k] ?? 0) + v;
  const summary = {
    benchmark: 'reroute-under-load',
    machine,
    runs,
    cyclesPerRun: o.cycles,
    rate: o.rate,
    holdMs: o.holdMs,
    dnsTtl: o.dnsTtl,
    cycles: sum((r) => r.cycles),
    sessions: {
      started: sum((r) => r.load.started),
      accepted: sum((r) => r.load.accepted),
      failed,
      retried: sum((r) => r.load.retried),
      completed: sum((r) => r.load.completed),
    },
    failures,
    sessionsPerSecond: median(results.map((r) => r.sessionsPerSecond)),
    retriedShare:
      sum((r) => r.load.retried) /
      Math.max(
        1,
        sum((r) => r.load.accepted),
      ),
    pauseMs: {
      p50: median(results.map((r) => median(r.pauseMs))),
      p99: median(results.map((r) => percentile(r.pauseMs, 99))),
    },
    resumeMs: {
      p50: median(results.map((r) => median(r.resumeMs))),
      p99: median(results.map((r) => percentile(r.resumeMs, 99))),
    },
    notApplied: sum((r) => r.notApplied),
    ebbAcceptedCounter: sum((r) => r.ebbAccepted),
    ebbCpuPercent: median(results.map((r) => r.ebbCpuPercent)),
    loadExitCodes: results.map((r) => r.loadExit),
    target: 'failed sessions = 0',
    verdict: failed === 0 ? 'pass' : 'FAIL',
  };

  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    console.log('');
    console.log(
      table([
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
      ]),
    );
    console.log('');
    if (failed > 0) console.log(`failures by reason: ${JSON.stringify(failures)}`);
    if (summary.notApplied > 0)
      console.log(`WARNING: ${summary.notApplied} command(s) returned applied=false`);
    console.log(
      `Ebb's own count of accepted sessions: ${summary.ebbAcceptedCounter}; ebb up CPU ${fixed(summary.ebbCpuPercent, 0)}% of a core`,
    );
    console.log(
      `verdict: ${summary.verdict} (failed sessions must be 0; the sessions/s column is the offered rate)`,
    );
  }
  if (failed !== 0) process.exitCode = 1;
}

try {
  await main();
} finally {
  await runCleanups();
}
