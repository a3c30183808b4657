/**
 * SPEC §9 "drain detection": the time from the last session of a paused service ending to the
 * `service.drained` event, p50/p99 over many drains.
 *
 *   node --disable-warning=ExperimentalWarning bench/drain-detection.ts [--runs 3] [--cycles 100]
 *        [--sessions 1] [--json]
 *
 * Each cycle: resume m1's echo, open `--sessions` sessions (each does an echo round trip), pause
 * through the API, close all but one, then close the last and time how long until the event arrives
 * on the API's server-sent events (`GET /v1/events`). Two figures, both on this machine's clock:
 * "event" is the event's own `at` (when Ebb decided it is drained) minus the moment the client called
 * `end()` on the last socket; "SSE" is when this process read the event from the stream, minus the same
 * moment — what an operator's tool waiting on the stream sees. HAProxy and Envoy have no drain event:
 * a tool has to poll their session counts, so their column reads "none (poll)".
 *
 * Ebb runs with `agent.workers: 1` (pinned: the default is the CPU count; the echo is builtin and not
 * threaded anyway).
 */
import { connect, type Socket } from 'node:net';
import type { PoolStatus } from '../src/control/index.ts';
import type { EbbEvent } from '../src/core/index.ts';
import { runEbb } from '../test/harness/ebb-process.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { startEbbPool } from './lib/ebb-deployment.ts';
import { fixed, median, percentile, runPercentiles } from './lib/stats.ts';

/** Opens a session and waits for one echo round trip, so Ebb has accepted and counted it. */
function openSession(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('session did not open in 3 s'));
    }, 3000);
    socket.once('connect', () => socket.write('hello\n'));
    socket.once('data', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function closeSession(socket: Socket): Promise<number> {
  return new Promise((resolve) => {
    socket.once('close', () => resolve(performance.now()));
    socket.end();
  });
}

/** Resolves with the first event that matches, or null after `timeoutMs`. */
class EventWaiter {
  private readonly waiting = new Set<{
    match: (e: EbbEvent) => boolean;
    done: (v: { event: EbbEvent; receivedAt: number } | null) => void;
  }>();

  push(event: EbbEvent, receivedAt: number): void {
    for (const w of [...this.waiting]) {
      if (!w.match(event)) continue;
      this.waiting.delete(w);
      w.done({ event, receivedAt });
    }
  }

  next(
    match: (e: EbbEvent) => boolean,
    timeoutMs: number,
  ): Promise<{ event: EbbEvent; receivedAt: number } | null> {
    return new Promise((resolve) => {
      const entry = {
        match,
        done: (v: { event: EbbEvent; receivedAt: number } | null) => {
          clearTimeout(timer);
          resolve(v);
        },
      };
      const timer = setTimeout(() => {
        this.waiting.delete(entry);
        resolve(null);
      }, timeoutMs);
      this.waiting.add(entry);
    });
  }
}

interface RunResult {
  cycles: number;
  missed: number;
  eventMs: number[];
  sseMs: number[];
  clientCloseMs: number[];
  statusDrained: boolean | null;
}

async function oneRun(o: { cycles: number; sessions: number; maxSeconds: number }): Promise<RunResult> {
  const pool = await startEbbPool({
    members: 2,
    services: [{ id: 'echo', upstream: 'builtin:echo' }],
    agentWorkers: 1,
  });
  const waiter = new EventWaiter();
  const stream = await pool.events((event, receivedAt) => waiter.push(event, receivedAt));
  try {
    const m1 = pool.members[0]!;
    const mine = (code: string) => (e: EbbEvent) =>
      e.code === code && e.member === m1.id && e.service === 'echo';
    const result: RunResult = {
      cycles: 0,
      missed: 0,
      eventMs: [],
      sseMs: [],
      clientCloseMs: [],
      statusDrained: null,
    };
    const deadline = performance.now() + o.maxSeconds * 1000;
    for (let i = 0; i < o.cycles && performance.now() < deadline; i++) {
      const sockets: Socket[] = [];
      for (let s = 0; s < o.sessions; s++) sockets.push(await openSession(m1.address, m1.ports.echo!));
      const paused = waiter.next(mine('service.paused'), 5000);
      await pool.command(m1.id, 'pause', { service: 'echo' });
      await paused; // the stream is quiet again before the measured close
      await Promise.all(sockets.slice(0, -1).map(closeSession));
      const drained = waiter.next(mine('service.drained'), 5000);
      const t0 = performance.now();
      const t0Epoch = performance.timeOrigin + t0;
      const closedAt = await closeSession(sockets[sockets.length - 1]!);
      const got = await drained;
      if (got) {
        // `at` is Date.now(), whole ms: the decision fell somewhere in [at, at + 1), so take the middle.
        result.eventMs.push(got.event.at + 0.5 - t0Epoch);
        result.sseMs.push(got.receivedAt - t0);
        result.clientCloseMs.push(closedAt - t0);
      } else {
        result.missed++;
      }
      result.cycles++;
      if (i === o.cycles - 1 || performance.now() >= deadline) {
        // Also visible in `ebb status --json`: checked once per run, on the last drain.
        const status = JSON.parse(
          (await runEbb(['--api', pool.apiUrl, 'status', '--json'])).stdout,
        ) as PoolStatus;
        result.statusDrained =
          status.members.find((m) => m.id === m1.id)?.services.find((s) => s.id === 'echo')?.drained ?? null;
      }
      const resumed = waiter.next(mine('service.resumed'), 5000);
      await pool.command(m1.id, 'resume', { service: 'echo' });
      await resumed;
    }
    return result;
  } finally {
    stream.close();
    await pool.stop();
  }
}

async function main(): Promise<void> {
  const bench = startBench('drain-detection', {
    numbers: {
      runs: [3, 1, 20],
      cycles: [100, 1, 2000],
      sessions: [1, 1, 1000],
      'max-seconds': [120, 5, 600],
    },
  });
  const runs = bench.numbers.runs;
  const opts = {
    cycles: bench.numbers.cycles,
    sessions: bench.numbers.sessions,
    maxSeconds: bench.numbers['max-seconds'],
  };
  const log = bench.log;
  log(
    `drain-detection: ${runs} run(s) × ${opts.cycles} drains, ${opts.sessions} session(s) each, events read from GET /v1/events`,
  );

  const results = await eachRun(
    bench,
    runs,
    () => oneRun(opts),
    (res) =>
      `${res.cycles} drains, ${res.missed} without an event in 5 s; event p50 ${fixed(median(res.eventMs))} ms ` +
      `p99 ${fixed(percentile(res.eventMs, 99))} ms; SSE p50 ${fixed(median(res.sseMs))} ms p99 ${fixed(percentile(res.sseMs, 99))} ms; ` +
      `status --json drained=${res.statusDrained}`,
  );
  const summary = {
    benchmark: 'drain-detection',
    machine: bench.machine,
    runs,
    cyclesPerRun: opts.cycles,
    sessionsPerDrain: opts.sessions,
    missed: results.reduce((a, r) => a + r.missed, 0),
    eventMs: runPercentiles(results, (r) => r.eventMs),
    sseMs: runPercentiles(results, (r) => r.sseMs),
    clientCloseMs: runPercentiles(results, (r) => r.clientCloseMs),
    statusDrained: results.map((r) => r.statusDrained),
    peer: 'none (poll)',
  };
  report(
    bench,
    summary,
    [
      ['figure (median of runs)', 'ebb', 'HAProxy/Envoy', 'ratio'],
      ['last close → service.drained (event `at`) p50 ms', fixed(summary.eventMs.p50), 'none (poll)', '—'],
      ['last close → service.drained (event `at`) p99 ms', fixed(summary.eventMs.p99), 'none (poll)', '—'],
      ['last close → event read from SSE p50 ms', fixed(summary.sseMs.p50), 'none (poll)', '—'],
      ['last close → event read from SSE p99 ms', fixed(summary.sseMs.p99), 'none (poll)', '—'],
    ],
    [
      `client saw its socket closed after p50 ${fixed(summary.clientCloseMs.p50)} ms; drains without an event: ${summary.missed}; ` +
        `ebb status --json showed drained=true: ${summary.statusDrained.every((d) => d === true) ? 'yes' : `no (${summary.statusDrained.join(', ')})`}`,
      'peer: HAProxy and Envoy emit no drain event; a tool polls their session counts (stats socket / admin API), so it learns ' +
        'of the drain on average half a poll interval late.',
    ],
  );
  if (summary.missed > 0) process.exitCode = 1;
}

await runBench(main);
