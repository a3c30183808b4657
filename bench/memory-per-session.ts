/**
 * SPEC §9 "memory per session": RSS growth per 10,000 idle proxied sessions through an Ebb tcp listener,
 * beside HAProxy (TCP mode, as many threads) proxying to the same upstream (a plain Node echo server).
 *
 *   node --disable-warning=ExperimentalWarning bench/memory-per-session.ts [--runs 3] [--sessions N]
 *        [--threads 1] [--json]
 *
 * Each run starts a fresh proxy, warms it up with 200 sessions (opened, one round trip, closed), reads
 * VmRSS from /proc/<pid>/status, opens N sessions (each does one small echo round trip, so both legs are
 * up, then stays idle), waits 2 s, reads VmRSS again, closes them and reads it a third time. The figure
 * is (after − before) × 10,000 / N. A third column, the **node floor**, is a proxy on Node's `net` with
 * nothing of Ebb's (bench/lib/tcp-floor-proxy.ts: two sockets and the same forwarding per session): what
 * any proxy whose sessions are Node sockets costs at least. A proxied session costs the proxy two sockets, so N is 10,000 unless
 * the hard limit on open files (`ulimit -Hn`, which only CAP_SYS_RESOURCE can raise) is too low: then N
 * is the most that fits and the growth is scaled to 10,000 (it is linear in N).
 *
 * Ebb's listener runs on `--threads` threads (default 1; `agent.workers`, pinned: the default is the CPU
 * count), HAProxy with `nbthread` the same; the node floor is always one thread. At N > 1 Ebb's sessions
 * live in worker threads (each its own V8 heap) and the figure is the whole process's RSS growth.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { which } from '../test/harness/managed-process.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { startEbbPool } from './lib/ebb-deployment.ts';
import { HeldSessions } from './lib/load.ts';
import { childFdLimit, hardFdLimit, rssKiB, scratchDir } from './lib/processes.ts';
import { fixed, median, ratio } from './lib/stats.ts';
import { startEchoUpstream, startHaproxyPeer, startNodeFloorProxy } from './lib/tcp-peers.ts';

const Target = { ebb: 'ebb', node: 'node', haproxy: 'haproxy' } as const;
type Target = (typeof Target)[keyof typeof Target];

interface Sample {
  sessions: number;
  failed: number;
  beforeKiB: number;
  heldKiB: number;
  afterCloseKiB: number;
  /** MiB of RSS growth per 10,000 sessions. */
  mibPer10k: number;
  openSeconds: number;
  ebbCounted: number | null;
}

async function main(): Promise<void> {
  const bench = startBench('memory-per-session', {
    numbers: {
      runs: [3, 1, 10],
      sessions: [10_000, 100, Number.POSITIVE_INFINITY],
      'settle-ms': [2000, 200, 30_000],
      threads: [1, 1, 8],
    },
  });
  const log = bench.log;
  const runs = bench.numbers.runs;
  const settleMs = bench.numbers['settle-ms'];
  const threads = bench.numbers.threads;
  // Two sockets per proxied session, plus room for the process's own descriptors.
  const fit = Math.floor((childFdLimit() - 600) / 2);
  const wanted = bench.numbers.sessions;
  const sessions = Math.min(wanted, fit);
  const haproxyAvailable = which('haproxy');
  const targets: Target[] = haproxyAvailable
    ? [Target.ebb, Target.node, Target.haproxy]
    : [Target.ebb, Target.node];
  if (!haproxyAvailable)
    log('memory-per-session: haproxy is not installed (apt-get install -y haproxy): its column is skipped');
  log(
    `memory-per-session: ${runs} run(s); ${sessions} idle proxied sessions per measurement` +
      (sessions < wanted ? ` (fd hard limit ${hardFdLimit()} fits no more; figures scaled to 10,000)` : '') +
      `; settle ${settleMs} ms; upstream: Node echo; Ebb agent.workers ${threads}, HAProxy nbthread ${threads}, mode tcp; the node floor one thread`,
  );

  const dir = scratchDir('ebb-bench-mem-');
  const { port: upPort, proc: upstream } = await startEchoUpstream();

  const measure = async (t: Target): Promise<Sample> => {
    let pid: number;
    let endpoint: { host: string; port: number };
    let stop: () => Promise<void>;
    let counted: (() => Promise<number>) | null = null;
    if (t === Target.ebb) {
      const pool = await startEbbPool({
        members: 1,
        minAccepting: 0,
        services: [{ id: 'proxy', upstream: `127.0.0.1:${upPort}` }],
        agentWorkers: threads,
      });
      const m = pool.members[0]!;
      pid = pool.apiProcess.pid;
      endpoint = { host: m.address, port: m.ports.proxy! };
      stop = () => pool.stop();
      counted = async () => (await pool.service(m.id, 'proxy')).sessions;
    } else if (t === Target.node) {
      const floor = await startNodeFloorProxy({ host: '127.0.0.1', port: upPort });
      pid = floor.proc.pid;
      endpoint = { host: floor.host, port: floor.port };
      stop = () => floor.proc.stop();
    } else {
      const { haproxy, host, port } = await startHaproxyPeer(
        dir,
        { host: '127.0.0.1', port: upPort },
        sessions + 100,
        threads,
      );
      pid = haproxy.pid;
      endpoint = { host, port };
      stop = () => haproxy.stop();
    }
    try {
      const warm = await HeldSessions.open({ ...endpoint, sessions: 200, concurrency: 50, holdSeconds: 60 });
      await warm.close();
      await sleep(settleMs);
      const beforeKiB = rssKiB(pid);
      const held = await HeldSessions.open({ ...endpoint, sessions, concurrency: 100, holdSeconds: 300 });
      try {
        await sleep(settleMs);
        const heldKiB = rssKiB(pid);
        // Ebb's own count, from its status (written at most every 50 ms).
        const ebbCounted = counted ? await counted() : null;
        await held.close();
        await sleep(settleMs);
        const afterCloseKiB = rssKiB(pid);
        return {
          sessions: held.held,
          failed: held.failed,
          beforeKiB,
          heldKiB,
          afterCloseKiB,
          mibPer10k: held.held > 0 ? ((heldKiB - beforeKiB) / 1024) * (10_000 / held.held) : Number.NaN,
          openSeconds: held.openSeconds,
          ebbCounted,
        };
      } finally {
        await held.close();
      }
    } finally {
      await stop();
    }
  };

  const samples = new Map<Target, Sample[]>(targets.map((t) => [t, []]));
  await eachRun(bench, runs, async (run) => {
    const order = run % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const s = await measure(t);
      samples.get(t)!.push(s);
      log(
        `run ${run + 1} ${t}: ${s.sessions} sessions held (${s.failed} failed, opened in ${s.openSeconds.toFixed(1)} s` +
          `${s.ebbCounted !== null ? `, Ebb counts ${s.ebbCounted}` : ''}); RSS ${(s.beforeKiB / 1024).toFixed(1)} → ` +
          `${(s.heldKiB / 1024).toFixed(1)} MiB, ${(s.afterCloseKiB / 1024).toFixed(1)} MiB after closing; ` +
          `${s.mibPer10k.toFixed(1)} MiB per 10,000 sessions`,
      );
      await sleep(1000);
    }
  });
  await upstream.stop();

  const med = (t: Target, f: (s: Sample) => number) =>
    samples.has(t) ? median(samples.get(t)!.map(f)) : Number.NaN;
  const fig = (t: Target) => ({
    mibPer10k: med(t, (s) => s.mibPer10k),
    kibPerSession: med(t, (s) => (s.heldKiB - s.beforeKiB) / s.sessions),
    baselineMiB: med(t, (s) => s.beforeKiB / 1024),
    retainedAfterCloseMiB: med(t, (s) => (s.afterCloseKiB - s.beforeKiB) / 1024),
    failed: samples.get(t)?.reduce((a, s) => a + s.failed, 0) ?? 0,
  });
  const e = fig(Target.ebb);
  const n = fig(Target.node);
  const h = targets.includes(Target.haproxy) ? fig(Target.haproxy) : null;
  const summary = {
    benchmark: 'memory-per-session',
    machine: bench.machine,
    runs,
    sessionsPerMeasurement: sessions,
    scaledTo10k: sessions !== 10_000,
    ebb: e,
    nodeFloor: n,
    haproxy: h,
    ratio: h ? ratio(e.mibPer10k, h.mibPer10k) : null,
    perRun: Object.fromEntries(targets.map((t) => [t, samples.get(t)])),
  };
  const hv = (f: (x: ReturnType<typeof fig>) => number, d = 1) => (h ? fixed(f(h), d) : 'n/a');
  const rv = (f: (x: ReturnType<typeof fig>) => number) => (h ? fixed(ratio(f(e), f(h))) : 'n/a');
  report(
    bench,
    summary,
    [
      ['figure (median of runs)', 'ebb', 'node floor', 'haproxy', 'ebb/haproxy', 'floor/haproxy'],
      [
        'RSS growth per 10,000 idle sessions (MiB)',
        fixed(e.mibPer10k, 1),
        fixed(n.mibPer10k, 1),
        hv((x) => x.mibPer10k),
        rv((x) => x.mibPer10k),
        h ? fixed(ratio(n.mibPer10k, h.mibPer10k)) : 'n/a',
      ],
      [
        'per session (KiB)',
        fixed(e.kibPerSession, 2),
        fixed(n.kibPerSession, 2),
        hv((x) => x.kibPerSession, 2),
        rv((x) => x.kibPerSession),
        h ? fixed(ratio(n.kibPerSession, h.kibPerSession)) : 'n/a',
      ],
      [
        'RSS before, after warm-up (MiB)',
        fixed(e.baselineMiB, 1),
        fixed(n.baselineMiB, 1),
        hv((x) => x.baselineMiB),
        rv((x) => x.baselineMiB),
        '—',
      ],
      [
        'still held 2 s after closing them all (MiB)',
        fixed(e.retainedAfterCloseMiB, 1),
        fixed(n.retainedAfterCloseMiB, 1),
        hv((x) => x.retainedAfterCloseMiB),
        '—',
        '—',
      ],
    ],
    e.failed || h?.failed
      ? [`sessions that failed to open: ebb ${e.failed}, haproxy ${h?.failed ?? 'n/a'}`]
      : [],
  );
}

await runBench(main);
