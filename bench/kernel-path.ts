/**
 * SPEC §12 / issue 11: what `mode: kernel` costs, beside a direct connection, Ebb's own proxy and
 * HAProxy (TCP mode, `nbthread 1`), all in the same run and driven by the same load tool
 * (`bench/lib/load-worker.ts`); and how fast the kernel path pauses and sees a drain.
 *
 *   node --disable-warning=ExperimentalWarning bench/kernel-path.ts [--quick] [--runs 3] [--seconds 3]
 *        [--concurrency 50] [--bytes 1024] [--stream-connections 4] [--chunk 65536] [--cycles 50] [--json]
 *
 * It needs root, `nft`, `ss` and `ip`: it makes a network namespace of its own and runs everything in
 * it (the root namespace's ruleset is never touched), then removes it. Targets, each an echo server
 * that is a plain Node process (`bench/lib/echo-server.ts`):
 * - direct: an echo server no Ebb listener knows;
 * - kernel: an identical echo server on the address and port of a running `mode: kernel` listener
 *   (Ebb counts its sessions from the socket table; no rule: the member's chain does not exist);
 * - kernel+chain: the same while another kernel service of the member is paused, so the member's chain
 *   (one rule) sits on the input hook and every packet goes through it;
 * - ebb-proxy: Ebb's tcp proxy listener in front of the direct server; haproxy: HAProxy in front of it.
 * Pause latency: POST pause returned, over `--cycles` pause/resume cycles of the kernel service (a
 * connect right after each return must be refused). Drain detection: one held connection, pause, close
 * it; the `service.drained` event's `at` minus the moment of the close. Medians of runs; p99 of cycles.
 *
 * Ebb's proxy listener runs on one thread (`agent.workers: 1`, pinned: the default is the CPU count),
 * as HAProxy's `nbthread 1`; the kernel path has no threads of Ebb's in the data path.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EbbEvent } from '../src/core/index.ts';
import { EbbServer } from '../test/harness/ebb-process.ts';
import { ManagedProcess, nodeBin, nodeFlags, runProcess, which } from '../test/harness/managed-process.ts';
import { poolYaml } from '../test/harness/pool-config.ts';
import { freePort } from '../test/harness/ports.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { apiCommandTimed } from './lib/ebb-deployment.ts';
import { EventStream } from './lib/event-stream.ts';
import { connLoad, streamLoad } from './lib/load.ts';
import { benchProcessOptions, scratchDir, track } from './lib/processes.ts';
import { fixed, median, percentile, ratio, rotate } from './lib/stats.ts';
import { startEchoUpstream, startHaproxyPeer } from './lib/tcp-peers.ts';

const Target = {
  direct: 'direct',
  kernel: 'kernel',
  kernelChain: 'kernel+chain',
  proxy: 'ebb-proxy',
  haproxy: 'haproxy',
} as const;
type Target = (typeof Target)[keyof typeof Target];

/** Outside the namespace: make one, run this script inside it, remove it. */
async function outside(): Promise<void> {
  if (process.getuid?.() !== 0 || !which('nft') || !which('ip') || !which('ss')) {
    process.stderr.write('kernel-path: needs root, nft, ss and ip (bash scripts/ensure-deps.sh --bench)\n');
    process.exit(1);
  }
  const ns = `ebb-bench-${randomBytes(3).toString('hex')}`;
  await runProcess('ip', ['netns', 'add', ns]);
  const del = () => runProcess('ip', ['netns', 'del', ns]).catch(() => undefined);
  try {
    await runProcess('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        nodeBin,
        ...nodeFlags,
        import.meta.filename,
        ...process.argv.slice(2),
        '--inside',
      ],
      { stdio: 'inherit' },
    );
    const stop = () => child.kill('SIGINT');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? 1)));
    process.exitCode = code;
  } finally {
    await del();
  }
}

function openHeld(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    socket.once('connect', () => socket.write('hello\n'));
    socket.once('data', () => resolve(socket));
    socket.once('error', reject);
  });
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

async function inside(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const bench = startBench('kernel-path', {
    numbers: {
      runs: [quick ? 1 : 3, 1, 20],
      seconds: [quick ? 2 : 3, 1, 60],
      concurrency: [50, 1, 1000],
      bytes: [1024, 1, 1 << 20],
      'stream-connections': [4, 1, 256],
      chunk: [65536, 1024, 1 << 22],
      cycles: [quick ? 10 : 50, 1, 1000],
    },
    flags: ['quick', 'inside'],
  });
  const o = bench.numbers;
  const log = bench.log;
  const dir = scratchDir('ebb-bench-kernel-');
  const direct = await startEchoUpstream();
  // The kernel targets: an echo server on 127.0.0.2, the address of member fe01.
  const member = '127.0.0.2';
  const kernelPort = await freePort();
  const kernelServer = track(
    new ManagedProcess(
      'kernel echo server',
      nodeBin,
      [
        ...nodeFlags,
        `${import.meta.dirname}/lib/echo-server.ts`,
        '--host',
        member,
        '--port',
        String(kernelPort),
      ],
      benchProcessOptions(),
    ),
  );
  await kernelServer.waitForOutput(/listening \d+/);
  const proxyPort = await freePort();
  const apiPort = await freePort();
  const haveHaproxy = which('haproxy');
  const peer = haveHaproxy ? await startHaproxyPeer(dir, direct, 4000) : null;
  const config = `${dir}/pool.yaml`;
  writeFileSync(
    config,
    poolYaml({
      pool: { name: 'bench-kernel', fqdn: 'bench-kernel.ebb.test', minAccepting: 0 },
      store: `sqlite:${dir}/state.db`,
      dns: { listen: `127.0.0.1:${await freePort()}` },
      api: { listen: `127.0.0.1:${apiPort}` },
      // One thread for the proxy figure, as HAProxy's nbthread 1 (the default is the CPU count).
      agent: { localState: `${dir}/local`, workers: 1 },
      members: [
        {
          id: 'fe01',
          address: member,
          services: [
            { id: 'kern', listeners: [{ protocol: 'tcp', mode: 'kernel', port: kernelPort }] },
            // Only ever paused, to put the member's chain on the input hook for kernel+chain.
            { id: 'other', listeners: [{ protocol: 'tcp', mode: 'kernel', port: 1 }] },
            {
              id: 'proxy',
              listeners: [{ protocol: 'tcp', port: proxyPort, upstream: `127.0.0.1:${direct.port}` }],
            },
          ],
        },
      ],
    }),
  );
  const ebb = track(new EbbServer(['up', config], { ...benchProcessOptions(), name: 'ebb up', cwd: dir }));
  await ebb.waitForOutput(/is up/, 30_000);
  const api = `http://127.0.0.1:${apiPort}`;
  const command = (cmd: string, service: string) => apiCommandTimed(api, 'fe01', cmd, { service });

  const endpoints: Record<Target, { host: string; port: number } | null> = {
    direct: { host: direct.host, port: direct.port },
    kernel: { host: member, port: kernelPort },
    'kernel+chain': { host: member, port: kernelPort },
    'ebb-proxy': { host: member, port: proxyPort },
    haproxy: peer ? { host: peer.host, port: peer.port } : null,
  };
  const targets = (Object.keys(endpoints) as Target[]).filter((t) => endpoints[t] !== null);
  log(
    `kernel-path: ${o.runs} run(s) × ${o.seconds} s per figure, ${o.concurrency} loops, ${o.bytes} B per ` +
      `connection; stream ${o['stream-connections']} × ${o.chunk} B; ${o.cycles} pause and drain cycles; ` +
      `HAProxy ${peer ? 'nbthread 1' : 'not installed: skipped'}; all in namespace of its own`,
  );
  let chainOn = false;
  const setChain = async (on: boolean) => {
    if (on === chainOn) return;
    await command(on ? 'pause' : 'resume', 'other');
    chainOn = on;
  };
  const measure = async (t: Target, seconds: number) => {
    await setChain(t === Target.kernelChain);
    const e = endpoints[t]!;
    const conn = await connLoad({ ...e, workers: 1, seconds, concurrency: o.concurrency, bytes: o.bytes });
    const stream = await streamLoad({
      ...e,
      workers: 1,
      seconds,
      connections: o['stream-connections'],
      chunk: o.chunk,
      window: 4 * o.chunk,
    });
    return { conn: conn.perSecond, failed: conn.failed, mb: stream.mbPerSecond };
  };
  for (const t of targets) await measure(t, 1); // warm-up
  const samples = new Map<Target, Array<{ conn: number; mb: number; failed: number }>>(
    targets.map((t) => [t, []]),
  );
  await eachRun(
    bench,
    o.runs,
    async (run) => {
      for (const t of rotate(targets, run)) {
        await sleep(500);
        samples.get(t)!.push(await measure(t, o.seconds));
      }
    },
    () =>
      targets
        .map(
          (t) =>
            `${t} ${fixed(samples.get(t)!.at(-1)!.conn, 0)} conn/s ${fixed(samples.get(t)!.at(-1)!.mb, 0)} MB/s`,
        )
        .join(' | '),
  );
  await setChain(false);

  // Pause latency and drain detection on the kernel service.
  const events: Array<{ event: EbbEvent; at: number }> = [];
  const stream = await EventStream.open(`${api}/v1/events`, (event, at) => events.push({ event, at }));
  const waitEvent = async (code: string, since: number) => {
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline) {
      const hit = events.slice(since).find((e) => e.event.code === code && e.event.service === 'kern');
      if (hit) return hit;
      await sleep(2);
    }
    return null;
  };
  const pauseMs: number[] = [];
  const drainMs: number[] = [];
  let acceptedAfterPause = 0;
  let missedDrains = 0;
  for (let i = 0; i < o.cycles; i++) {
    const held = await openHeld(member, kernelPort);
    const t0 = performance.now();
    const { returnedAt } = await command('pause', 'kern');
    pauseMs.push(returnedAt - t0);
    if (!(await refused(member, kernelPort))) acceptedAfterPause++;
    const mark = events.length;
    const closedAtEpoch = performance.timeOrigin + performance.now();
    held.end();
    const drained = await waitEvent('service.drained', mark);
    if (drained) drainMs.push(drained.event.at + 0.5 - closedAtEpoch);
    else missedDrains++;
    await command('resume', 'kern');
  }
  stream.close();
  // The same command on the proxy listener of the same member: what the control path costs by itself.
  const proxyPauseMs: number[] = [];
  for (let i = 0; i < o.cycles; i++) {
    const t0 = performance.now();
    const { returnedAt } = await command('pause', 'proxy');
    proxyPauseMs.push(returnedAt - t0);
    await command('resume', 'proxy');
  }

  const med = (t: Target, f: (s: { conn: number; mb: number }) => number) => median(samples.get(t)!.map(f));
  const fig = Object.fromEntries(
    targets.map((t) => [t, { connPerSecond: med(t, (s) => s.conn), mbPerSecond: med(t, (s) => s.mb) }]),
  ) as Record<Target, { connPerSecond: number; mbPerSecond: number }>;
  const d = fig.direct;
  const summary = {
    benchmark: 'kernel-path',
    machine: bench.machine,
    options: o,
    figures: fig,
    ratiosToDirect: Object.fromEntries(
      targets.map((t) => [
        t,
        { conn: ratio(fig[t].connPerSecond, d.connPerSecond), mb: ratio(fig[t].mbPerSecond, d.mbPerSecond) },
      ]),
    ),
    pauseMs: { p50: percentile(pauseMs, 50), p99: percentile(pauseMs, 99), acceptedAfterPause },
    proxyPauseMs: { p50: percentile(proxyPauseMs, 50), p99: percentile(proxyPauseMs, 99) },
    drainMs: { p50: percentile(drainMs, 50), p99: percentile(drainMs, 99), missed: missedDrains },
    targets: 'kernel ≥ 0.97× direct on every figure; pause p99 ≤ 20 ms; drain detection p99 ≤ 100 ms',
  };
  await ebb.stop();
  report(
    bench,
    summary,
    [
      ['figure (median of runs)', ...targets],
      ['connections/s', ...targets.map((t) => fixed(fig[t].connPerSecond, 0))],
      ['  × direct', ...targets.map((t) => fixed(ratio(fig[t].connPerSecond, d.connPerSecond)))],
      ['MB/s echoed', ...targets.map((t) => fixed(fig[t].mbPerSecond, 0))],
      ['  × direct', ...targets.map((t) => fixed(ratio(fig[t].mbPerSecond, d.mbPerSecond)))],
    ],
    [
      `pause (kernel, POST returned): p50 ${fixed(summary.pauseMs.p50)} ms, p99 ${fixed(summary.pauseMs.p99)} ms over ${pauseMs.length}; accepted after return: ${acceptedAfterPause}`,
      `pause (proxy listener, same run, for the control path's share): p50 ${fixed(summary.proxyPauseMs.p50)} ms, p99 ${fixed(summary.proxyPauseMs.p99)} ms`,
      `drain detection (close → service.drained at): p50 ${fixed(summary.drainMs.p50)} ms, p99 ${fixed(summary.drainMs.p99)} ms over ${drainMs.length}${missedDrains ? `, ${missedDrains} missed` : ''}`,
      `targets: ${summary.targets}`,
    ],
  );
}

await runBench(process.argv.includes('--inside') ? inside : outside);
