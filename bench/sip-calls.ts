/**
 * SPEC §9 "SIP calls/s": the highest call rate one SIP front end (`ebb up`, one member, one UDP
 * listener) carries with 0 failed calls, beside Kamailio's dispatcher (test/kamailio/dispatcher.cfg)
 * proxying to the same callee on the same machine in the same run; and the memory one front end needs
 * per 10,000 live calls (its dialog tracking).
 *
 *   node --disable-warning=ExperimentalWarning bench/sip-calls.ts [--runs 3] [--seconds 5] [--start 250]
 *        [--max-rate 16000] [--threads 1] [--kamailio-children N] [--memory-calls 10000]
 *        [--memory-runs 1] [--skip-memory] [--json]
 *
 * Calls: SIPp (test/sipp/uac-call.xml: INVITE, 200, ACK, BYE, 200, no hold) to a SIPp callee
 * (test/sipp/uas-bench.xml), through Ebb or Kamailio. A trial offers `rate` calls/s for `--seconds`; it
 * passes only when SIPp reports every call successful AND the callee's own count of completed calls
 * matches AND the kernel counted no UDP receive-buffer drop (/proc/net/snmp Udp RcvbufErrors, plus the
 * per-socket drops of /proc/net/udp): under UDP overload SIPp's retransmissions can hide lost packets,
 * so its success count alone is not trusted. Each run doubles the rate until a trial fails, then
 * bisects to within 10 %. Ebb and Kamailio runs alternate; figures are medians of the runs.
 *
 * Memory: a fresh `ebb up`, warmed with a few thousand calls; once their transactions have expired
 * (64*T1) its RSS is the baseline; then `--memory-calls` calls are set up and held; RSS is read when
 * all are up (transactions of the setup still remembered) and 35 s later (dialogs only).
 *
 * `--threads N` (default 1): Ebb with `agent.workers: N` (its SIP listener on N threads sharing the port,
 * SO_REUSEPORT; pinned, as the default is the CPU count) beside Kamailio with N UDP children
 * (`--kamailio-children` overrides Kamailio's count alone). With N > 1 the SIPp caller uses a socket per
 * call (`-t un`): the kernel spreads datagrams over the sockets sharing a port by their source address,
 * so calls from one socket would all reach one thread. The same SIPp mode is used for Kamailio in the
 * same run, so both are offered the same traffic (Kamailio's children read one shared socket either way).
 *
 * The load tool's cost: the CPU seconds of the SIPp caller (read from /proc/<pid>/stat every 200 ms while
 * it runs, so up to 200 ms short) and of the SIPp callee over each trial, printed for the best rate. On
 * 2 cores SIPp itself takes a large part of the machine, so the figures are those of the machine minus
 * SIPp, for both targets alike. Every process is ended by its PID; temp files are removed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EbbServer } from '../test/harness/ebb-process.ts';
import { which } from '../test/harness/managed-process.ts';
import { poolYaml } from '../test/harness/pool-config.ts';
import { freePortRange } from '../test/harness/ports.ts';
import { Kamailio } from '../test/harness/sip-kamailio.ts';
import { Sipp } from '../test/harness/sip-sipp.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { benchProcessOptions, cpuSeconds, rssKiB, scratchDir, track } from './lib/processes.ts';
import { fixed, median } from './lib/stats.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SOCKET_BUFFER = String(4 * 1024 * 1024);

interface Target {
  name: 'ebb' | 'kamailio';
  host: string;
  port: number;
}

interface MemoryRun {
  baselineKiB: number;
  setupKiB: number;
  liveKiB: number;
  /** V8 heap in use (GET /metrics nodejs_heap_size_used_bytes), before and with the calls live. */
  heapBeforeKiB: number;
  heapLiveKiB: number;
  live: number;
}

interface Trial {
  rate: number;
  calls: number;
  pass: boolean;
  why: string;
  successful: number;
  failed: number;
  calleeCompleted: number;
  retransmissions: number;
  rcvbufErrors: number;
  socketDrops: number;
  seconds: number;
  /** CPU seconds of the SIPp caller and callee over the trial (the load tool's cost). */
  sippCpuSeconds: number;
}

/** Kernel-wide UDP receive-buffer drops (RFC 4113 udpInErrors' buffer part, as Linux counts it). */
function rcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const header = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[header.indexOf('RcvbufErrors')]);
}

/** Drops counted on the UDP sockets bound to these ports (last column of /proc/net/udp). */
function socketDrops(ports: number[]): number {
  const hex = new Set(ports.map((p) => p.toString(16).toUpperCase().padStart(4, '0')));
  let drops = 0;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    if (hex.has(f[1]!.split(':')[1]!)) drops += Number(f[f.length - 1]);
  }
  return drops;
}

class Bench {
  readonly dir = scratchDir('ebb-sip-bench-');
  readonly opts: {
    seconds: number;
    start: number;
    maxRate: number;
    /** `agent.workers` of Ebb; > 1: SIPp calls from a socket per call. */
    threads: number;
    children: number;
    memoryCalls: number;
  };
  base = 0;
  #nextPort = 0;
  uas!: Sipp;
  kamailio!: Kamailio;
  readonly targets: Target[] = [];
  readonly log: (line: string) => void;

  constructor(opts: Bench['opts'], log: (line: string) => void) {
    this.opts = opts;
    this.log = log;
  }

  port(): number {
    return this.#nextPort++;
  }

  sipp(options: ConstructorParameters<typeof Sipp>[0]): Sipp {
    return track(new Sipp(options));
  }

  async start(): Promise<void> {
    this.base = await freePortRange(64);
    this.#nextPort = this.base + 10;
    const uasPort = this.base;
    this.uas = this.sipp({
      scenario: 'uas-bench.xml',
      dir: this.dir,
      localPort: uasPort,
      transport: 'udp',
      extra: ['-aa', '-buff_size', SOCKET_BUFFER],
    });
    await sleep(300);
    const ebbAddress = `127.0.${(this.base % 200) + 20}.1`;
    await this.startEbb('bench', ebbAddress, this.base + 1);
    this.kamailio = await Kamailio.start(
      this.dir,
      { address: '127.0.0.1', port: this.base + 2 },
      [{ host: '127.0.0.1', port: uasPort }],
      // Transactions live in shared memory: 64 MB runs out near 1,000 calls/s; give it room.
      { children: this.opts.children, shmMb: 512 },
    );
    track(this.kamailio);
    this.targets.push(
      { name: 'ebb', host: ebbAddress, port: this.base + 1 },
      { name: 'kamailio', host: '127.0.0.1', port: this.base + 2 },
    );
  }

  /** `ebb up` on a one-member pool whose one SIP service fronts the SIPp callee; returns it and its API. */
  async startEbb(name: string, address: string, port: number): Promise<{ proc: EbbServer; api: string }> {
    const api = this.port();
    const dns = this.port();
    const dir = join(this.dir, name);
    const config = `${dir}.yaml`;
    writeFileSync(
      config,
      poolYaml({
        pool: { name, fqdn: `${name}.ebb.test` },
        store: `sqlite:${dir}-state.db`,
        dns: { listen: `127.0.0.1:${dns}` },
        api: { listen: `127.0.0.1:${api}` },
        agent: { leaseTtl: '5s', localState: `${dir}-local`, workers: this.opts.threads },
        members: [
          {
            id: 'm1',
            address,
            services: [
              {
                id: 'voice',
                listeners: [{ protocol: 'sip', transport: 'udp', port, upstream: `127.0.0.1:${this.base}` }],
              },
            ],
          },
        ],
      }),
    );
    const proc = track(new EbbServer(['up', config], { ...benchProcessOptions(), name: 'ebb up' }));
    await proc.waitForOutput(/is up/, 20_000);
    return { proc, api: `http://127.0.0.1:${api}` };
  }

  async trial(target: Target, rate: number): Promise<Trial> {
    const calls = Math.max(1, Math.round(rate * this.opts.seconds));
    await sleep(1200); // the callee writes its counts every second: start from a fresh line
    const calleeBefore = this.uas.stats().successful;
    const rcv0 = rcvbufErrors();
    const sockets = [this.base, target.port];
    const drops0 = socketDrops(sockets);
    const uasCpu0 = cpuSeconds(this.uas.process.pid);
    const started = performance.now();
    const uac = this.sipp({
      scenario: 'uac-call.xml',
      dir: this.dir,
      localPort: this.port(),
      remote: `${target.host}:${target.port}`,
      transport: 'udp',
      calls,
      rate,
      holdMs: 0,
      service: 'bench',
      limit: Math.max(2000, rate * 4),
      socketPerCall: this.opts.threads > 1,
      extra: ['-buff_size', SOCKET_BUFFER, '-recv_timeout', '8000'],
    });
    // Its /proc entry goes once it exits: keep the last reading.
    let uacCpu = 0;
    const poll = setInterval(() => {
      try {
        uacCpu = cpuSeconds(uac.process.pid);
      } catch {
        // exited
      }
    }, 200);
    const r = await uac.wait(this.opts.seconds * 1000 + 60_000).finally(() => clearInterval(poll));
    const seconds = (performance.now() - started) / 1000;
    const sippCpuSeconds = uacCpu + cpuSeconds(this.uas.process.pid) - uasCpu0;
    await sleep(1500);
    const calleeCompleted = this.uas.stats().successful - calleeBefore;
    const rcv = rcvbufErrors() - rcv0;
    const drops = socketDrops(sockets) - drops0;
    const why =
      r.code !== 0 || r.failed > 0
        ? `SIPp: ${r.failed} failed (exit ${r.code})`
        : r.successful !== calls
          ? `SIPp: ${r.successful}/${calls} successful`
          : calleeCompleted !== calls
            ? `callee completed ${calleeCompleted}/${calls}`
            : rcv > 0 || drops > 0
              ? `kernel dropped ${rcv} datagrams (sockets: ${drops})`
              : '';
    return {
      rate,
      calls,
      pass: why === '',
      why,
      successful: r.successful,
      failed: r.failed,
      calleeCompleted,
      retransmissions: r.retransmissions,
      rcvbufErrors: rcv,
      socketDrops: drops,
      seconds,
      sippCpuSeconds,
    };
  }

  /** Doubles from `start` until a trial fails, then bisects to within 10 %. */
  async maxRate(target: Target, start: number): Promise<{ best: number; trials: Trial[] }> {
    const trials: Trial[] = [];
    const run = async (rate: number) => {
      const t = await this.trial(target, rate);
      trials.push(t);
      this.log(
        `  ${target.name} ${rate} calls/s × ${this.opts.seconds} s: ${t.pass ? 'pass' : `FAIL (${t.why})`}; ` +
          `retransmissions ${t.retransmissions}, callee completed ${t.calleeCompleted}/${t.calls}`,
      );
      return t.pass;
    };
    let lo = 0;
    let hi = 0;
    let rate = start;
    while (rate <= this.opts.maxRate) {
      if (await run(rate)) {
        lo = rate;
        rate *= 2;
      } else {
        hi = rate;
        break;
      }
    }
    if (hi === 0) return { best: lo, trials }; // never failed below --max-rate
    if (lo === 0) {
      // Failed at the start rate: come down until one passes.
      for (rate = Math.floor(start / 2); rate >= 10 && lo === 0; rate = Math.floor(rate / 2)) {
        if (await run(rate)) lo = rate;
        else hi = rate;
      }
    }
    while (lo > 0 && hi - lo > Math.max(20, lo * 0.1)) {
      const mid = Math.round((lo + hi) / 20) * 10;
      if (await run(mid)) lo = mid;
      else hi = mid;
    }
    return { best: lo, trials };
  }

  /** RSS of a fresh `ebb up` before and with `calls` live calls (see the header). */
  async memory(rate: number): Promise<MemoryRun> {
    const port = this.port();
    const host = `127.0.${(this.base % 200) + 21}.1`;
    const { proc: ebb, api } = await this.startEbb(`mem${port}`, host, port);
    const sessions = async () => {
      const pool = (await (await fetch(`${api}/v1/pool`)).json()) as {
        members: Array<{ services: Array<{ sessions: number }> }>;
      };
      return pool.members[0]!.services[0]!.sessions;
    };
    const uac = (calls: number, holdMs: number) =>
      this.sipp({
        scenario: 'uac-call.xml',
        dir: this.dir,
        localPort: this.port(),
        remote: `${host}:${port}`,
        transport: 'udp',
        calls,
        rate,
        holdMs,
        service: 'bench',
        limit: calls + 100,
        socketPerCall: this.opts.threads > 1,
        extra: ['-buff_size', SOCKET_BUFFER, '-recv_timeout', '8000'],
      });
    this.log(
      `  memory: warming up with ${Math.min(5000, rate * 5)} calls, then 40 s for their transactions to expire`,
    );
    await uac(Math.min(5000, rate * 5), 0).wait(120_000);
    await sleep(40_000);
    const heapUsed = async () => {
      const text = await (await fetch(`${api}/metrics`)).text();
      const m = /^nodejs_heap_size_used_bytes (\d+)/m.exec(text);
      return m ? Number(m[1]) / 1024 : NaN;
    };
    const heapBeforeKiB = await heapUsed();
    const baselineKiB = rssKiB(ebb.pid);
    const n = this.opts.memoryCalls;
    const rampSeconds = n / rate;
    const holdMs = Math.round((rampSeconds + 60) * 1000);
    this.log(`  memory: ${n} calls at ${rate}/s, each held ${fixed(holdMs / 1000, 0)} s`);
    const held = uac(n, holdMs);
    const deadline = Date.now() + (rampSeconds + 30) * 1000;
    let live = 0;
    while (Date.now() < deadline && (live = await sessions()) < n) await sleep(500);
    const setupKiB = rssKiB(ebb.pid);
    await sleep(35_000);
    const liveNow = await sessions();
    const liveKiB = rssKiB(ebb.pid);
    const heapLiveKiB = await heapUsed();
    const r = await held.wait(holdMs + 60_000);
    this.log(
      `  memory: ${live} live calls counted; after 35 s ${liveNow}; SIPp ${r.successful} successful, ${r.failed} failed`,
    );
    await ebb.stop();
    return { baselineKiB, setupKiB, liveKiB, heapBeforeKiB, heapLiveKiB, live: Math.min(live, liveNow) };
  }
}

async function main(): Promise<void> {
  const cli = startBench('sip-calls', {
    numbers: {
      runs: [3, 1, 10],
      seconds: [5, 1, 60],
      start: [250, 10, 100_000],
      'max-rate': [16_000, 10, 200_000],
      threads: [1, 1, 8],
      // 0: as many as --threads.
      'kamailio-children': [0, 0, 64],
      'memory-calls': [10_000, 100, 200_000],
      'memory-runs': [1, 1, 5],
    },
    flags: ['skip-memory'],
  });
  const n = cli.numbers;
  const runs = n.runs;
  const memoryRuns = cli.flags['skip-memory'] ? 0 : n['memory-runs'];
  const opts = {
    seconds: n.seconds,
    start: n.start,
    maxRate: n['max-rate'],
    threads: n.threads,
    children: n['kamailio-children'] || n.threads,
    memoryCalls: n['memory-calls'],
  };
  const log = cli.log;
  for (const cmd of ['sipp', 'kamailio']) {
    if (!which(cmd)) throw new Error(`${cmd} is not installed (apt-get install sip-tester kamailio)`);
  }
  log(
    `sip-calls: ${runs} run(s); trials of ${opts.seconds} s; Ebb agent.workers ${opts.threads}; ` +
      `Kamailio with ${opts.children} UDP worker(s); SIPp ${opts.threads > 1 ? 'a socket per call (-t un)' : 'one socket (-t u1)'}; ` +
      `UDP RcvbufErrors before: ${rcvbufErrors()}`,
  );

  const bench = new Bench(opts, log);
  await bench.start();
  // Warm both up (JIT, caches) before anything is measured.
  for (const t of bench.targets) await bench.trial(t, 100);

  const best: Record<Target['name'], number[]> = { ebb: [], kamailio: [] };
  const passing: Record<Target['name'], Trial[]> = { ebb: [], kamailio: [] };
  await eachRun(cli, runs, async (r) => {
    for (const t of bench.targets) {
      const prev = best[t.name].at(-1);
      const start = prev ? Math.max(10, Math.round(prev / 20) * 10) : opts.start;
      log(`run ${r + 1}, ${t.name}:`);
      const { best: b, trials } = await bench.maxRate(t, start);
      best[t.name].push(b);
      const top = trials.filter((x) => x.pass && x.rate === b)[0];
      if (top) passing[t.name].push(top);
      log(`run ${r + 1}, ${t.name}: ${b} calls/s with 0 failed calls`);
    }
  });
  // The load tool's share of the machine while it offered the best passing rate (median over runs).
  const sippCores = (ts: Trial[]) => median(ts.map((t) => t.sippCpuSeconds / t.seconds));
  const ebbRate = median(best.ebb);
  const kamRate = median(best.kamailio);

  const memory: MemoryRun[] = [];
  const memRate = Math.max(100, Math.min(2000, Math.round(ebbRate / 2 / 10) * 10));
  for (let r = 0; r < memoryRuns; r++) memory.push(await bench.memory(memRate));
  const per10k = (f: (m: MemoryRun) => number, base: (m: MemoryRun) => number = (m) => m.baselineKiB) =>
    memory.length
      ? median(memory.map((m) => ((f(m) - base(m)) / 1024) * (10_000 / Math.max(1, m.live))))
      : NaN;

  const summary = {
    benchmark: 'sip-calls',
    machine: cli.machine,
    runs,
    trialSeconds: opts.seconds,
    threads: opts.threads,
    kamailioChildren: opts.children,
    sippMode: opts.threads > 1 ? 'un' : 'u1',
    callsPerSecond: { ebb: ebbRate, kamailio: kamRate, ratio: ebbRate / kamRate, runs: best },
    atBestRate: {
      ebb: passing.ebb.map((t) => ({
        retransmissions: t.retransmissions,
        rcvbufErrors: t.rcvbufErrors,
        sippCpuSeconds: t.sippCpuSeconds,
        seconds: t.seconds,
      })),
      kamailio: passing.kamailio.map((t) => ({
        retransmissions: t.retransmissions,
        rcvbufErrors: t.rcvbufErrors,
        sippCpuSeconds: t.sippCpuSeconds,
        seconds: t.seconds,
      })),
    },
    memory: {
      calls: opts.memoryCalls,
      rate: memRate,
      runs: memory,
      mibPer10kAtSetup: per10k((m) => m.setupKiB),
      mibPer10kLive: per10k((m) => m.liveKiB),
      heapMibPer10kLive: per10k(
        (m) => m.heapLiveKiB,
        (m) => m.heapBeforeKiB,
      ),
    },
  };
  report(
    cli,
    summary,
    [
      ['figure (median of runs)', 'ebb', 'kamailio', 'ratio'],
      ['calls/s with 0 failed calls', String(ebbRate), String(kamRate), fixed(ebbRate / kamRate)],
      [
        'SIPp CPU (caller + callee) at that rate, cores',
        fixed(sippCores(passing.ebb)),
        fixed(sippCores(passing.kamailio)),
        '—',
      ],
      ['RSS MiB per 10,000 live calls (dialogs only)', fixed(summary.memory.mibPer10kLive), 'n/a', '—'],
      [
        'RSS MiB per 10,000 calls just set up (+ transactions)',
        fixed(summary.memory.mibPer10kAtSetup),
        'n/a',
        '—',
      ],
      ['JS heap MiB per 10,000 live calls', fixed(summary.memory.heapMibPer10kLive), 'n/a', '—'],
    ],
    [
      `runs: ebb ${best.ebb.join(', ')}; kamailio ${best.kamailio.join(', ')} (calls/s)`,
      'a rate passes only with every call successful in SIPp, the same number completed at the callee, and no UDP ' +
        'receive-buffer drop in the kernel (/proc/net/snmp RcvbufErrors, /proc/net/udp drops)',
      `SIPp ${opts.threads > 1 ? '-t un (a socket per call)' : '-t u1 (one socket)'} for both targets; its CPU is read from /proc ` +
        'every 200 ms (a lower bound by up to 0.2 s per trial)',
      `Kamailio: dispatcher, transaction-stateful (tm), record-routing, ${opts.children} UDP worker(s); it keeps no dialog ` +
        'state in this config, so it has no per-call memory figure to compare (its shared memory is preallocated).',
    ],
  );
}

await runBench(main);
