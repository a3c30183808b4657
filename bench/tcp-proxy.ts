/**
 * SPEC §9 "TCP proxy": connections/s and MB/s through an Ebb tcp listener, beside Debian's HAProxy
 * (TCP mode, `nbthread 1`: one thread, as Ebb is one Node thread) and beside a direct connection, all
 * to the same upstream (a plain Node echo server in its own process) and driven by the same load tool
 * (`bench/lib/load-worker.ts`, in `--workers` processes).
 *
 *   node --disable-warning=ExperimentalWarning bench/tcp-proxy.ts [--runs 5] [--seconds 3] [--workers 1]
 *        [--concurrency 50] [--bytes 1024] [--stream-connections 4] [--chunk 65536]
 *        [--threads 1] [--cpu-prof DIR] [--targets direct,haproxy,ebb] [--json]
 *
 * `--threads N` (default 1): Ebb with `agent.workers: N` (its listener on N threads, SO_REUSEPORT)
 * beside HAProxy with `nbthread N` (SPEC §13). Always written to the config: `agent.workers` defaults to
 * the CPU count, which would make the one-thread figure an N-thread one.
 *
 * conn/s: each of `--concurrency` loops per worker connects, sends `--bytes`, reads them back and
 * closes (and waits for the peer's FIN). MB/s: `--stream-connections` long connections per worker keep
 * 256 KB in flight in `--chunk` writes; the figure is payload bytes echoed back per second (10^6 B = 1 MB;
 * each byte crosses the proxy twice). Targets run in a rotating order in each run; the figures are the
 * medians over runs. The CPU columns are the proxy process's CPU time over the run (100% = one core).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Haproxy } from '../test/harness/haproxy.ts';
import { which } from '../test/harness/managed-process.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { summariseProfile } from './lib/cpu-profile.ts';
import { startEbbPool, type EbbDeployment } from './lib/ebb-deployment.ts';
import { connLoad, streamLoad } from './lib/load.ts';
import { cpuSeconds, cpuTimes, scratchDir } from './lib/processes.ts';
import { fixed, median, percentile, ratio, rotate } from './lib/stats.ts';
import { startEchoUpstream, startHaproxyPeer } from './lib/tcp-peers.ts';

const Target = { direct: 'direct', haproxy: 'haproxy', ebb: 'ebb' } as const;
type Target = (typeof Target)[keyof typeof Target];

interface Endpoint {
  host: string;
  port: number;
  /** The proxy's PID, for CPU accounting; null for direct. */
  pid: number | null;
}

interface Sample {
  connPerSecond: number;
  connP50: number;
  connP99: number;
  connFailed: number;
  connErrors: Record<string, number>;
  connCpu: number;
  /** Share of the proxy's CPU spent in the kernel (system time) under the conn load. */
  connSysShare: number;
  upstreamCpuConn: number;
  clientCpuConn: number;
  mbPerSecond: number;
  streamCpu: number;
  streamErrors: Record<string, number>;
}

async function main(): Promise<void> {
  const bench = startBench('tcp-proxy', {
    numbers: {
      runs: [5, 1, 20],
      seconds: [3, 1, 60],
      workers: [1, 1, 8],
      threads: [1, 1, 8],
      concurrency: [50, 1, 1000],
      bytes: [1024, 1, 1 << 20],
      'stream-connections': [4, 1, 256],
      chunk: [65536, 1024, 1 << 22],
    },
    strings: { targets: 'direct,haproxy,ebb' },
    optional: ['cpu-prof'],
  });
  const n = bench.numbers;
  const o = {
    runs: n.runs,
    seconds: n.seconds,
    workers: n.workers,
    threads: n.threads,
    concurrency: n.concurrency,
    bytes: n.bytes,
    streamConnections: n['stream-connections'],
    chunk: n.chunk,
  };
  const log = bench.log;
  let targets = bench.strings.targets.split(',').filter((t): t is Target => t in Target);
  if (targets.includes(Target.haproxy) && !which('haproxy')) {
    log('tcp-proxy: haproxy is not installed (apt-get install -y haproxy): its column is skipped');
    targets = targets.filter((t) => t !== Target.haproxy);
  }

  const dir = scratchDir('ebb-bench-tcp-');
  const { port: upPort, proc: upstream } = await startEchoUpstream();

  const endpoints = new Map<Target, Endpoint>();
  endpoints.set(Target.direct, { host: '127.0.0.1', port: upPort, pid: null });
  let haproxy: Haproxy | null = null;
  if (targets.includes(Target.haproxy)) {
    const peer = await startHaproxyPeer(dir, { host: '127.0.0.1', port: upPort }, 4000, o.threads);
    haproxy = peer.haproxy;
    endpoints.set(Target.haproxy, { host: peer.host, port: peer.port, pid: peer.haproxy.pid });
  }
  let pool: EbbDeployment | null = null;
  const profDir = bench.optional['cpu-prof'];
  if (targets.includes(Target.ebb)) {
    pool = await startEbbPool({
      members: 1,
      minAccepting: 0,
      services: [{ id: 'proxy', upstream: `127.0.0.1:${upPort}` }],
      agentWorkers: o.threads,
      nodeArgs: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    });
    const m = pool.members[0]!;
    endpoints.set(Target.ebb, { host: m.address, port: m.ports.proxy!, pid: pool.apiProcess.pid });
  }

  log(
    `tcp-proxy: ${o.runs} run(s) × ${o.seconds} s per figure; ${o.workers} load worker process(es); conn: ` +
      `${o.concurrency} loops/worker, ${o.bytes} B echoed per connection; stream: ${o.streamConnections} ` +
      `connection(s)/worker, ${o.chunk} B writes; HAProxy ${haproxy ? `nbthread ${o.threads}, mode tcp` : 'skipped'}; Ebb agent.workers ${o.threads}; upstream: Node echo`,
  );

  const measureConn = async (t: Target, seconds: number) => {
    const e = endpoints.get(t)!;
    const cpu0 = e.pid ? cpuTimes(e.pid) : { user: 0, system: 0 };
    const up0 = cpuSeconds(upstream.pid);
    const w0 = performance.now();
    const r = await connLoad({
      host: e.host,
      port: e.port,
      workers: o.workers,
      seconds,
      concurrency: o.concurrency,
      bytes: o.bytes,
    });
    const wall = (performance.now() - w0) / 1000;
    const cpu1 = e.pid ? cpuTimes(e.pid) : { user: 0, system: 0 };
    const user = cpu1.user - cpu0.user;
    const system = cpu1.system - cpu0.system;
    return {
      r,
      cpu: (user + system) / wall,
      sysShare: user + system > 0 ? system / (user + system) : 0,
      upCpu: (cpuSeconds(upstream.pid) - up0) / wall,
    };
  };
  const measureStream = async (t: Target, seconds: number) => {
    const e = endpoints.get(t)!;
    const cpu0 = e.pid ? cpuSeconds(e.pid) : 0;
    const w0 = performance.now();
    const r = await streamLoad({
      host: e.host,
      port: e.port,
      workers: o.workers,
      seconds,
      connections: o.streamConnections,
      chunk: o.chunk,
      window: 4 * o.chunk,
    });
    const wall = (performance.now() - w0) / 1000;
    return { r, cpu: e.pid ? (cpuSeconds(e.pid) - cpu0) / wall : 0 };
  };

  // Warm-up: let V8 optimise the load tool, the upstream and Ebb's hot paths before anything counts.
  for (const t of targets) {
    await measureConn(t, 1);
    await measureStream(t, 1);
  }

  const samples = new Map<Target, Sample[]>(targets.map((t) => [t, []]));
  const oneRun = async (run: number) => {
    const order = rotate(targets, run);
    const partial = new Map<Target, Partial<Sample>>();
    for (const t of order) {
      await sleep(1000); // let TIME_WAIT sockets and CPU settle between targets
      const { r, cpu, sysShare, upCpu } = await measureConn(t, o.seconds);
      partial.set(t, {
        connPerSecond: r.perSecond,
        connP50: percentile(r.latencyMs, 50),
        connP99: percentile(r.latencyMs, 99),
        connFailed: r.failed,
        connErrors: r.errors,
        connCpu: cpu,
        connSysShare: sysShare,
        upstreamCpuConn: upCpu,
        clientCpuConn: r.clientCpu,
      });
    }
    for (const t of order) {
      await sleep(500);
      const { r, cpu } = await measureStream(t, o.seconds);
      Object.assign(partial.get(t)!, { mbPerSecond: r.mbPerSecond, streamCpu: cpu, streamErrors: r.errors });
    }
    for (const t of targets) samples.get(t)!.push(partial.get(t) as Sample);
    return partial as Map<Target, Sample>;
  };
  await eachRun(bench, o.runs, oneRun, (partial) =>
    targets
      .map((t) => {
        const s = partial.get(t)!;
        return (
          `${t} ${s.connPerSecond.toFixed(0)} conn/s ${s.mbPerSecond.toFixed(0)} MB/s` +
          (s.connFailed ? ` (${s.connFailed} failed: ${JSON.stringify(s.connErrors)})` : '')
        );
      })
      .join(' | '),
  );

  const med = (t: Target, f: (s: Sample) => number) =>
    samples.has(t) ? median(samples.get(t)!.map(f)) : Number.NaN;
  const figure = (t: Target) => ({
    connPerSecond: med(t, (s) => s.connPerSecond),
    connP50Ms: med(t, (s) => s.connP50),
    connP99Ms: med(t, (s) => s.connP99),
    connFailed: samples.get(t)?.reduce((a, s) => a + s.connFailed, 0) ?? 0,
    mbPerSecond: med(t, (s) => s.mbPerSecond),
    proxyCpuConn: med(t, (s) => s.connCpu),
    proxyKernelShareConn: med(t, (s) => s.connSysShare),
    proxyCpuStream: med(t, (s) => s.streamCpu),
    upstreamCpuConn: med(t, (s) => s.upstreamCpuConn),
    clientCpuConn: med(t, (s) => s.clientCpuConn),
    /** Proxy CPU time per connection, µs: how much work one connection costs the proxy. */
    cpuUsPerConn: med(t, (s) => (s.connCpu / s.connPerSecond) * 1e6),
    /** Proxy CPU time per MB echoed, ms. */
    cpuMsPerMB: med(t, (s) => (s.streamCpu / s.mbPerSecond) * 1e3),
  });
  const fig = Object.fromEntries(targets.map((t) => [t, figure(t)])) as Record<
    Target,
    ReturnType<typeof figure>
  >;
  const e = fig.ebb;
  const h = fig.haproxy;
  const summary = {
    benchmark: 'tcp-proxy',
    machine: bench.machine,
    options: o,
    figures: fig,
    ratios:
      e && h
        ? {
            connPerSecond: ratio(e.connPerSecond, h.connPerSecond),
            mbPerSecond: ratio(e.mbPerSecond, h.mbPerSecond),
            cpuUsPerConn: ratio(e.cpuUsPerConn, h.cpuUsPerConn),
            cpuMsPerMB: ratio(e.cpuMsPerMB, h.cpuMsPerMB),
          }
        : null,
    target: 'ebb/haproxy ≥ 0.8 for conn/s and MB/s',
    perRun: Object.fromEntries(targets.map((t) => [t, samples.get(t)])),
    profile: null as null | ReturnType<typeof summariseProfile>,
  };

  await haproxy?.stop();
  if (pool) await pool.stop();
  await upstream.stop();
  if (profDir) {
    const files = readdirSync(profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .sort();
    if (files.length > 0) summary.profile = summariseProfile(join(profDir, files[files.length - 1]!));
  }

  const col = (f: (x: ReturnType<typeof figure>) => number, digits = 0) =>
    targets.map((t) => fixed(f(fig[t]), digits));
  // Rows about the proxy process have nothing to say for a direct connection.
  const proxyCol = (f: (x: ReturnType<typeof figure>) => number, digits = 0) =>
    targets.map((t) => (t === Target.direct ? '—' : fixed(f(fig[t]), digits)));
  const rat = (f: (x: ReturnType<typeof figure>) => number) => (e && h ? fixed(ratio(f(e), f(h))) : 'n/a');
  const failed = targets.filter((t) => fig[t].connFailed > 0);
  const profile = summary.profile;
  report(
    bench,
    summary,
    [
      ['figure (median of runs)', ...targets, 'ebb/haproxy'],
      ['connections/s', ...col((x) => x.connPerSecond), rat((x) => x.connPerSecond)],
      ['connection time p50 (ms)', ...col((x) => x.connP50Ms, 2), rat((x) => x.connP50Ms)],
      ['connection time p99 (ms)', ...col((x) => x.connP99Ms, 2), rat((x) => x.connP99Ms)],
      ['MB/s echoed', ...col((x) => x.mbPerSecond), rat((x) => x.mbPerSecond)],
      [
        'proxy CPU, conn load (% of a core)',
        ...proxyCol((x) => x.proxyCpuConn * 100),
        rat((x) => x.proxyCpuConn),
      ],
      [
        'proxy CPU, stream load (% of a core)',
        ...proxyCol((x) => x.proxyCpuStream * 100),
        rat((x) => x.proxyCpuStream),
      ],
      ['proxy CPU per connection (µs)', ...proxyCol((x) => x.cpuUsPerConn), rat((x) => x.cpuUsPerConn)],
      ['  of which in the kernel (%)', ...proxyCol((x) => x.proxyKernelShareConn * 100), '—'],
      ['proxy CPU per MB (ms)', ...proxyCol((x) => x.cpuMsPerMB, 2), rat((x) => x.cpuMsPerMB)],
      ['upstream CPU, conn load (% of a core)', ...col((x) => x.upstreamCpuConn * 100), '—'],
      ['load tool CPU, conn load (% of a core)', ...col((x) => x.clientCpuConn * 100), '—'],
    ],
    [
      'target: ebb/haproxy ≥ 0.8 for connections/s and MB/s (SPEC §9: same machine, same worker count)',
      ...(failed.length
        ? [`failed connections: ${failed.map((t) => `${t} ${fig[t].connFailed}`).join(', ')}`]
        : []),
      ...(profile
        ? [
            `\nEbb CPU profile (${profDir}): share of busy (non-idle) samples by area`,
            ...profile.byArea
              .slice(0, 12)
              .map((a) => `  ${(a.share * 100).toFixed(1).padStart(5)}%  ${a.area}`),
            'top functions by self time',
            ...profile.top.map((f) => `  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.fn}`),
          ]
        : []),
    ],
  );
}

await runBench(main);
