/**
 * SPEC §9 "pause to refusal": under a steady connect load, how many new sessions a service accepts after
 * `pause` has returned (must be 0), and how long `pause` takes (API round trip, p50/p99).
 *
 *   node --disable-warning=ExperimentalWarning bench/pause-to-refusal.ts [--runs 3] [--cycles 40]
 *        [--rate 500] [--cli-cycles 5] [--json]
 *
 * Each run starts `ebb up` on a 2-member pool (loopback aliases) with a tcp `echo` service, drives
 * `--rate` connects/s at m1 from this process and pauses/resumes m1's echo through the API `--cycles`
 * times. Every connect is classified by the phase it *started* in, which is exact because the load and
 * the API calls share one event loop: a connect started after the pause promise resolved is "after
 * pause". "accepted" means the connect succeeded AND an echo round trip worked.
 *
 * A connect whose handshake completed in the kernel's accept queue just before the listening socket
 * closed is reset by the kernel when it closes: it is counted as "reset during pause" (a failed new
 * connect; Ebb never accepted it, so no session was dropped).
 *
 * Ebb runs with `agent.workers: 1` (pinned: the default is the CPU count; the echo is builtin and not
 * threaded anyway).
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { runEbb } from '../test/harness/ebb-process.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { startEbbPool } from './lib/ebb-deployment.ts';
import { fixed, median, percentile, runPercentiles, sum } from './lib/stats.ts';

const Phase = { running: 'running', pausing: 'pausing', paused: 'paused', resuming: 'resuming' } as const;
type Phase = (typeof Phase)[keyof typeof Phase];
const Outcome = { ok: 'ok', refused: 'refused', reset: 'reset', timeout: 'timeout', other: 'other' } as const;
type Outcome = (typeof Outcome)[keyof typeof Outcome];

const phases = Object.values(Phase);
const outcomes = Object.values(Outcome);
type Counts = Record<Phase, Record<Outcome, number>>;

function emptyCounts(): Counts {
  return Object.fromEntries(
    phases.map((p) => [p, Object.fromEntries(outcomes.map((o) => [o, 0]))]),
  ) as Counts;
}

/** A steady stream of new connects, each tagged with the phase it started in. */
class ConnectLoad {
  phase: Phase = Phase.running;
  readonly counts: Counts = emptyCounts();
  readonly otherCodes: Record<string, number> = {};
  attempts = 0;
  skipped = 0;
  private inFlight = 0;
  private credit = 0;
  private last = 0;
  private ticker: NodeJS.Timeout | null = null;
  private readonly host: string;
  private readonly port: number;
  private readonly rate: number;
  private readonly maxInFlight: number;
  private drained: (() => void) | null = null;

  constructor(host: string, port: number, rate: number, maxInFlight = 256) {
    this.host = host;
    this.port = port;
    this.rate = rate;
    this.maxInFlight = maxInFlight;
  }

  start(): void {
    this.last = performance.now();
    this.ticker = setInterval(() => this.tick(), 2);
  }

  /** Stops starting connects and waits (bounded) for those in flight. */
  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    if (this.inFlight === 0) return;
    await Promise.race([new Promise<void>((done) => (this.drained = done)), sleep(5000)]);
  }

  private tick(): void {
    const now = performance.now();
    this.credit += ((now - this.last) * this.rate) / 1000;
    this.last = now;
    while (this.credit >= 1) {
      this.credit--;
      if (this.inFlight >= this.maxInFlight) this.skipped++;
      else this.attempt();
    }
  }

  private attempt(): void {
    const phase = this.phase;
    const token = `ping ${this.attempts++}\n`;
    this.inFlight++;
    let connected = false;
    let settled = false;
    let received = '';
    const socket = connect({ host: this.host, port: this.port });
    const finish = (outcome: Outcome, code?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      this.counts[phase][outcome]++;
      if (outcome === Outcome.other)
        this.otherCodes[code ?? 'unknown'] = (this.otherCodes[code ?? 'unknown'] ?? 0) + 1;
      if (--this.inFlight === 0) this.drained?.();
    };
    const timer = setTimeout(() => finish(Outcome.timeout), 3000);
    socket.once('connect', () => {
      connected = true;
      socket.write(token);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      if (received.length >= token.length)
        finish(received === token ? Outcome.ok : Outcome.other, 'bad-echo');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (connected) finish(Outcome.reset, err.code);
      else if (err.code === 'ECONNREFUSED') finish(Outcome.refused);
      else finish(Outcome.other, err.code);
    });
    // Closed by the peer before the echo came back: the same as a reset for this connect.
    socket.once('close', () => finish(connected ? Outcome.reset : Outcome.other, 'closed'));
  }
}

interface RunResult {
  cycles: number;
  notApplied: number;
  pauseMs: number[];
  resumeMs: number[];
  cliPauseMs: number[];
  counts: Counts;
  otherCodes: Record<string, number>;
  attempts: number;
  skipped: number;
  connectRate: number;
  ebbAccepted: number;
}

async function oneRun(o: {
  cycles: number;
  cliCycles: number;
  rate: number;
  holdMs: number;
  maxSeconds: number;
}): Promise<RunResult> {
  const pool = await startEbbPool({
    members: 2,
    services: [{ id: 'echo', upstream: 'builtin:echo' }],
    agentWorkers: 1,
  });
  try {
    const m1 = pool.members[0]!;
    const load = new ConnectLoad(m1.address, m1.ports.echo!, o.rate);
    const pauseMs: number[] = [];
    const resumeMs: number[] = [];
    const cliPauseMs: number[] = [];
    let notApplied = 0;
    const deadline = performance.now() + o.maxSeconds * 1000;
    const started = performance.now();
    load.start();
    await sleep(500); // warm-up at full rate before the first pause

    const resume = async () => {
      load.phase = Phase.resuming;
      const t = performance.now();
      await pool.command(m1.id, 'resume', { service: 'echo' });
      resumeMs.push(performance.now() - t);
      load.phase = Phase.running;
    };

    let cycles = 0;
    for (let i = 0; i < o.cycles + o.cliCycles && performance.now() < deadline; i++) {
      await sleep(o.holdMs);
      const viaCli = i >= o.cycles;
      load.phase = Phase.pausing;
      const t = performance.now();
      if (viaCli) {
        const r = await runEbb(['--api', pool.apiUrl, 'pause', m1.id, '--service', 'echo']);
        // The phase changes on the CLI's exit, which this process sees after the command returned.
        load.phase = Phase.paused;
        cliPauseMs.push(performance.now() - t);
        if (r.code !== 0) throw new Error(`ebb pause exited ${r.code}: ${r.stderr}`);
      } else {
        const answer = await pool.command(m1.id, 'pause', { service: 'echo' });
        load.phase = Phase.paused;
        pauseMs.push(performance.now() - t);
        if (answer.applied !== true) notApplied++;
      }
      await sleep(o.holdMs);
      await resume();
      cycles++;
    }
    await sleep(200);
    await load.stop();
    const elapsed = (performance.now() - started) / 1000;
    const status = await pool.service(m1.id, 'echo');
    return {
      cycles,
      notApplied,
      pauseMs,
      resumeMs,
      cliPauseMs,
      counts: load.counts,
      otherCodes: load.otherCodes,
      attempts: load.attempts,
      skipped: load.skipped,
      connectRate: load.attempts / elapsed,
      ebbAccepted: status.accepted,
    };
  } finally {
    await pool.stop();
  }
}

async function main(): Promise<void> {
  const bench = startBench('pause-to-refusal', {
    numbers: {
      runs: [3, 1, 20],
      cycles: [40, 1, 500],
      'cli-cycles': [5, 0, 50],
      rate: [500, 10, 5000],
      hold: [200, 20, 5000],
      'max-seconds': [120, 5, 600],
    },
  });
  const n = bench.numbers;
  const runs = n.runs;
  const opts = {
    cycles: n.cycles,
    cliCycles: n['cli-cycles'],
    rate: n.rate,
    holdMs: n.hold,
    maxSeconds: n['max-seconds'],
  };
  const log = bench.log;
  log(
    `pause-to-refusal: ${runs} run(s) × ${opts.cycles} API + ${opts.cliCycles} CLI pause/resume cycles, ` +
      `${opts.rate} connects/s at the paused member, ${opts.holdMs} ms running / ${opts.holdMs} ms paused per cycle`,
  );

  const results = await eachRun(
    bench,
    runs,
    () => oneRun(opts),
    (res) =>
      `${res.cycles} cycles, ${res.attempts} connects (${res.connectRate.toFixed(0)}/s); ` +
      `accepted after pause returned ${res.counts.paused.ok}; refused after pause ${res.counts.paused.refused}; ` +
      `reset ${outcomesTotal(res.counts, Outcome.reset)}; pause p50 ${fixed(median(res.pauseMs))} ms p99 ${fixed(percentile(res.pauseMs, 99))} ms`,
  );

  const total = (f: (r: RunResult) => number) => sum(results, f);
  const acceptedAfter = total((r) => r.counts.paused.ok);
  const summary = {
    benchmark: 'pause-to-refusal',
    machine: bench.machine,
    runs,
    cyclesPerRun: opts.cycles,
    connectsPerSecond: median(results.map((r) => r.connectRate)),
    connects: total((r) => r.attempts),
    acceptedAfterPause: acceptedAfter,
    refusedAfterPause: total((r) => r.counts.paused.refused),
    otherAfterPause: total((r) => r.counts.paused.timeout + r.counts.paused.other + r.counts.paused.reset),
    resetDuringPause: total((r) => r.counts.running.reset + r.counts.pausing.reset),
    resetByPhase: Object.fromEntries(phases.map((p) => [p, total((r) => r.counts[p].reset)])),
    resetAfterPause: total((r) => r.counts.paused.reset),
    acceptedWhilePausing: total((r) => r.counts.pausing.ok),
    pauseNotApplied: total((r) => r.notApplied),
    pauseMs: {
      ...runPercentiles(results, (r) => r.pauseMs),
      max: Math.max(...results.flatMap((r) => r.pauseMs)),
    },
    resumeMs: runPercentiles(results, (r) => r.resumeMs),
    cliPauseMs: {
      p50: median(results.flatMap((r) => r.cliPauseMs)),
      p99: percentile(
        results.flatMap((r) => r.cliPauseMs),
        99,
      ),
    },
    peer: 'none (SPEC §9 names no peer for this figure)',
    perRun: results.map((r) => ({
      cycles: r.cycles,
      connects: r.attempts,
      skipped: r.skipped,
      counts: r.counts,
      otherCodes: r.otherCodes,
      ebbAcceptedCounter: r.ebbAccepted,
      pauseP50: median(r.pauseMs),
      pauseP99: percentile(r.pauseMs, 99),
    })),
    verdict: acceptedAfter === 0 ? 'pass' : 'FAIL',
  };

  report(
    bench,
    summary,
    [
      ['figure (median of runs)', 'ebb', 'peer', 'ratio'],
      ['new sessions accepted after pause returned', String(acceptedAfter), '—', '—'],
      ['pause latency p50 (API round trip, ms)', fixed(summary.pauseMs.p50), '—', '—'],
      ['pause latency p99 (ms)', fixed(summary.pauseMs.p99), '—', '—'],
      [
        'resume latency p50 / p99 (ms)',
        `${fixed(summary.resumeMs.p50)} / ${fixed(summary.resumeMs.p99)}`,
        '—',
        '—',
      ],
      [
        'CLI `ebb pause` p50 / p99 (ms, incl. process start)',
        `${fixed(summary.cliPauseMs.p50, 0)} / ${fixed(summary.cliPauseMs.p99, 0)}`,
        '—',
        '—',
      ],
    ],
    [
      `connects: ${summary.connects} (${summary.connectsPerSecond.toFixed(0)}/s); after pause returned: ` +
        `${summary.refusedAfterPause} refused, ${acceptedAfter} accepted, ${summary.otherAfterPause} other; ` +
        `reset during pause (handshake done in the accept queue, then the listener closed): ${summary.resetDuringPause} ` +
        `(by phase the connect started in: ${phases.map((p) => `${p} ${summary.resetByPhase[p]}`).join(', ')}); ` +
        `accepted while the pause call was in flight: ${summary.acceptedWhilePausing}`,
      ...(summary.pauseNotApplied > 0
        ? [`WARNING: ${summary.pauseNotApplied} pause(s) returned applied=false`]
        : []),
      'peer: none (SPEC §9 names no peer for this figure)',
      `verdict: ${summary.verdict} (accepted after pause must be 0)`,
    ],
  );
  if (acceptedAfter !== 0) process.exitCode = 1;
}

function outcomesTotal(c: Counts, o: Outcome): number {
  return phases.reduce((a, p) => a + c[p][o], 0);
}

await runBench(main);
