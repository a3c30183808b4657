/**
 * SPEC §9 "hand-off" / §13: refused connections and cut sessions over K hand-offs in a row under load
 * (Ebb must show 0 / 0), and how long each hand-off takes, beside HAProxy hot-reloaded K times the way
 * operators do it, in the same run, against the same upstream (a plain Node echo server in its own
 * process) and the same load.
 *
 *   node --disable-warning=ExperimentalWarning bench/handoff.ts [--handoffs 20] [--quick]
 *        [--threads 1[,2]] [--rate 300] [--sessions 30] [--gap-ms 500] [--json]
 *
 * Ebb: `ebb up` on a one-member pool whose `echo` service is a tcp listener to the echo upstream
 * (`host:port`, not builtin), `agent.workers` = each `--threads` value (default 1; pinned, as its default is
 * the CPU count). A hand-off is the same `ebb up` started again (docs/handoff.md); its time runs from the
 * new process's start until the old one says `pid N took over`. HAProxy: master-worker mode (`-W -S`),
 * `nbthread` = the same value, TCP mode, `hard-stop-after` unset; a reload is SIGUSR2 to the master, timed
 * until the master says `Loading success.` (bench/lib/haproxy-reloadable.ts).
 *
 * Load, through each target for the whole run: brand-new connections straight at the listener (connect,
 * one echo round trip, close; one at a time, at most `--rate`/s, no retry; bench/lib/connect-loop.ts) and
 * `--sessions` held sessions that each exchange a line every ~200 ms (bench/lib/held-sessions.ts), opened
 * before the first hand-off and closed by this side after the last. Between hand-offs: `--gap-ms`.
 * Figures: connects attempted / refused (ECONNREFUSED) / reset or timed out, held sessions cut, the
 * sessions the replaced processes forced (Ebb's own count), hand-off ms p50 / max. `--quick`: 5 hand-offs.
 *
 * A handing-over Ebb turns net.ipv4.tcp_migrate_req on; its previous value is put back at the end.
 * Exit status 1 when Ebb refused, lost, cut or forced anything.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { which } from '../test/harness/managed-process.ts';
import { report, runBench, startBench } from './lib/bench-cli.ts';
import { ConnectLoop, type ConnectLoopCounts } from './lib/connect-loop.ts';
import { EbbChain } from './lib/ebb-handoffs.ts';
import { ReloadableHaproxy } from './lib/haproxy-reloadable.ts';
import { HeldSessions, type HeldCounts } from './lib/held-sessions.ts';
import { writePoolLayout } from './lib/pool-layout.ts';
import { onCleanup, scratchDir } from './lib/processes.ts';
import { percentile } from './lib/stats.ts';
import { startEchoUpstream, type Endpoint } from './lib/tcp-peers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const migrateReq = '/proc/sys/net/ipv4/tcp_migrate_req';

interface Options {
  handoffs: number;
  rate: number;
  sessions: number;
  gapMs: number;
}

interface TargetResult {
  target: string;
  threads: number;
  handoffMs: number[];
  connects: ConnectLoopCounts;
  held: HeldCounts;
  /** Ebb: sessions its replaced processes ended at a deadline (must be 0); HAProxy: null (not counted). */
  forced: number | null;
  /** Replaced processes (old workers) that exited by the end, and how many there were. */
  oldExited: number;
  oldTotal: number;
  /** Why the hand-offs stopped early, if they did. */
  error: string | null;
  /** Most processes (Ebb processes, HAProxy workers) running at once, read after each hand-off. */
  peakProcesses: number;
  /** Ebb: warnings and errors its processes logged (the first few). */
  warnings: string[];
}

/** What both targets have in common: K hand-offs under the load, then the load's counts. */
async function underLoad(
  label: string,
  at: Endpoint,
  o: Options,
  handOff: () => Promise<number>,
  log: (line: string) => void,
): Promise<{ handoffMs: number[]; connects: ConnectLoopCounts; held: HeldCounts; error: string | null }> {
  // Generous bounds: a hand-off normally takes about a second.
  const maxMs = o.handoffs * (o.gapMs + 20_000) + 60_000;
  const held = await HeldSessions.open(at.host, at.port, { count: o.sessions, everyMs: 200, maxMs });
  const loop = new ConnectLoop(at.host, at.port, { rate: o.rate, maxCount: 1_000_000, maxMs });
  const handoffMs: number[] = [];
  let error: string | null = null;
  try {
    await sleep(o.gapMs);
    for (let i = 0; i < o.handoffs; i++) {
      handoffMs.push(await handOff());
      log(`  ${label} hand-off ${i + 1}/${o.handoffs}: ${handoffMs.at(-1)!.toFixed(0)} ms`);
      await sleep(o.gapMs);
    }
  } catch (err) {
    error = (err as Error).message.slice(0, 2000);
    log(`  ${label}: FAILED: ${error}`);
  }
  // The loop stops before the held sessions close: its last connects still meet a process that accepts.
  const connects = await loop.stop();
  return { handoffMs, connects, held: await held.close(), error };
}

async function runEbb(
  threads: number,
  upstream: Endpoint,
  o: Options,
  log: (l: string) => void,
): Promise<TargetResult> {
  const layout = await writePoolLayout({
    dir: scratchDir('ebb-bench-handoff-'),
    real: 1,
    minAccepting: 0,
    services: [{ id: 'echo', upstream: `${upstream.host}:${upstream.port}` }],
    agentWorkers: threads,
  });
  const m1 = layout.real[0]!;
  const chain = await EbbChain.start(layout.configPath);
  try {
    const label = `ebb (agent.workers ${threads})`;
    let peak = 1;
    const handOff = async () => {
      const ms = await chain.handOff();
      peak = Math.max(peak, chain.alive());
      return ms;
    };
    const r = await underLoad(label, { host: m1.address, port: m1.ports.echo! }, o, handOff, log);
    // Held sessions are closed now: every replaced process should exit on its own, having forced none.
    const replaced = await chain.replaced(30_000);
    return {
      target: 'ebb',
      threads,
      ...r,
      forced: replaced.reduce((n, p) => n + (p.forced ?? 0), 0),
      oldExited: replaced.filter((p) => p.exitCode !== null).length,
      oldTotal: replaced.length,
      peakProcesses: peak,
      warnings: chain.warnings().slice(0, 5),
    };
  } finally {
    await chain.stop();
  }
}

async function runHaproxy(
  threads: number,
  upstream: Endpoint,
  o: Options,
  log: (l: string) => void,
): Promise<TargetResult> {
  const h = await ReloadableHaproxy.start(scratchDir('ebb-bench-haproxy-mw-'), upstream, {
    maxconn: 4000,
    threads,
  });
  try {
    let peak = 1;
    const reload = async () => {
      const ms = await h.reload();
      peak = Math.max(peak, h.formerWorkers - h.exitedFormer().exited + 1);
      return ms;
    };
    const r = await underLoad(`haproxy (nbthread ${threads})`, h, o, reload, log);
    // Old workers exit once their last connection has ended (bounded wait).
    const deadline = performance.now() + 30_000;
    while (h.exitedFormer().exited < h.formerWorkers && performance.now() < deadline) await sleep(100);
    return {
      target: 'haproxy',
      threads,
      ...r,
      forced: null,
      oldExited: h.exitedFormer().exited,
      oldTotal: h.formerWorkers,
      peakProcesses: peak,
      warnings: [],
    };
  } finally {
    await h.stop();
  }
}

/** Puts net.ipv4.tcp_migrate_req back as it was (a handing-over Ebb sets it to 1) at cleanup. */
function restoreMigrateReqAtEnd(): string | null {
  let before: string | null = null;
  try {
    before = readFileSync(migrateReq, 'utf8');
  } catch {
    return null; // a kernel before 5.14, or no /proc/sys: nothing to restore
  }
  onCleanup(() => {
    try {
      if (readFileSync(migrateReq, 'utf8') !== before) writeFileSync(migrateReq, before);
    } catch {
      // not root: Ebb could not have changed it either
    }
  });
  return before.trim();
}

function ebbFailures(r: TargetResult): string[] {
  const f: string[] = [];
  if (r.error) f.push(`did not finish: ${r.error.split('\n')[0]}`);
  if (r.connects.refused > 0) f.push(`${r.connects.refused} connects refused`);
  if (r.connects.lost > 0) f.push(`${r.connects.lost} connects reset or timed out`);
  if (r.held.cut > 0) f.push(`${r.held.cut} held sessions cut`);
  if ((r.forced ?? 0) > 0) f.push(`${r.forced} sessions forced by replaced processes`);
  if (r.oldExited < r.oldTotal) f.push(`${r.oldTotal - r.oldExited} replaced processes still running`);
  return f;
}

async function main(): Promise<void> {
  const bench = startBench('handoff', {
    numbers: {
      handoffs: [20, 1, 200],
      rate: [300, 10, 5000],
      sessions: [30, 1, 1000],
      'gap-ms': [500, 0, 10_000],
    },
    strings: { threads: '1' },
    flags: ['quick'],
  });
  const n = bench.numbers;
  const o: Options = {
    handoffs: bench.flags.quick ? Math.min(5, n.handoffs) : n.handoffs,
    rate: n.rate,
    sessions: n.sessions,
    gapMs: n['gap-ms'],
  };
  const threadCounts = [
    ...new Set(
      bench.strings.threads.split(',').map((t) => Math.min(8, Math.max(1, Math.round(Number(t)) || 1))),
    ),
  ];
  const haproxy = which('haproxy');
  const migrateBefore = restoreMigrateReqAtEnd();
  bench.log(
    `handoff: ${o.handoffs} hand-offs per target, ${o.gapMs} ms apart; ${o.sessions} held sessions (a line every ~200 ms); ` +
      `new connections at most ${o.rate}/s, one at a time, no retry; threads ${threadCounts.join(', ')}; ` +
      `HAProxy ${haproxy ? 'master-worker, SIGUSR2 reloads' : 'not installed: skipped'}; tcp_migrate_req was ${migrateBefore ?? 'n/a'}`,
  );
  const upstream = await startEchoUpstream();
  const results: TargetResult[] = [];
  for (const threads of threadCounts) {
    results.push(await runEbb(threads, upstream, o, bench.log));
    if (haproxy) results.push(await runHaproxy(threads, upstream, o, bench.log));
  }

  const failures = results
    .filter((r) => r.target === 'ebb')
    .flatMap((r) => ebbFailures(r).map((f) => `ebb (${r.threads} thread(s)): ${f}`));
  const name = (r: TargetResult) => (r.target === 'ebb' ? `ebb w${r.threads}` : `haproxy t${r.threads}`);
  const cell = (f: (r: TargetResult) => string) => results.map(f);
  const ms = (r: TargetResult, p: number) =>
    r.handoffMs.length ? percentile(r.handoffMs, p).toFixed(0) : '—';
  const rows = [
    ['figure', ...results.map(name)],
    ['hand-offs / reloads done', ...cell((r) => `${r.handoffMs.length}/${o.handoffs}`)],
    ['connects attempted', ...cell((r) => String(r.connects.attempted))],
    ['refused (ECONNREFUSED)', ...cell((r) => String(r.connects.refused))],
    ['reset or timed out', ...cell((r) => String(r.connects.lost))],
    [`held sessions cut (of ${o.sessions})`, ...cell((r) => String(r.held.cut))],
    ['held exchanges echoed', ...cell((r) => String(r.held.exchanges))],
    ['sessions forced by old processes', ...cell((r) => (r.forced === null ? 'n/a' : String(r.forced)))],
    ['processes running at once, most', ...cell((r) => String(r.peakProcesses))],
    ['old processes exited / replaced', ...cell((r) => `${r.oldExited}/${r.oldTotal}`)],
    ['hand-off ms p50', ...cell((r) => ms(r, 50))],
    ['hand-off ms max', ...cell((r) => ms(r, 100))],
  ];
  const ratios = threadCounts.flatMap((t) => {
    const e = results.find((r) => r.target === 'ebb' && r.threads === t);
    const h = results.find((r) => r.target === 'haproxy' && r.threads === t);
    if (!e?.handoffMs.length || !h?.handoffMs.length) return [];
    return [
      `hand-off p50 ratio ebb/haproxy at ${t} thread(s): ${(percentile(e.handoffMs, 50) / percentile(h.handoffMs, 50)).toFixed(1)}`,
    ];
  });
  const notes = [
    ...ratios,
    ...results.map((r) => `${name(r)} hand-off ms: ${r.handoffMs.map((v) => v.toFixed(0)).join(', ')}`),
    'Ebb hand-off: new `ebb up` started → old process said `pid N took over` (it includes starting Node and the pool); ' +
      'HAProxy reload: SIGUSR2 → master said `Loading success.`',
    ...results.flatMap((r) =>
      [...r.connects.examples, ...r.held.examples].length
        ? [`${name(r)} failures: ${[...r.connects.examples, ...r.held.examples].join('; ')}`]
        : [],
    ),
    ...results.flatMap((r) => r.warnings.map((w) => `${name(r)} logged: ${w}`)),
    failures.length
      ? `FAILED — Ebb must refuse, lose, cut and force nothing: ${failures.join('; ')}`
      : 'ebb: 0 refused, 0 lost, 0 cut, 0 forced: pass',
  ];
  report(
    bench,
    { benchmark: 'handoff', machine: bench.machine, options: o, threads: threadCounts, results, failures },
    rows,
    notes,
  );
  if (failures.length) {
    process.stderr.write(`
handoff: FAILED: ${failures.join('; ')}
`);
    process.exitCode = 1;
  }
}

await runBench(main);
