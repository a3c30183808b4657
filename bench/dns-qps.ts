/**
 * SPEC §9 "DNS queries/s": dnsperf against Ebb's DNS server and against Unbound serving the same names as
 * local data, one after the other in the same run, each with one thread on loopback.
 *
 *   node bench/dns-qps.ts [--seconds N] [--runs 1] [--threads 1] [--json]   (needs dnsperf and unbound)
 *
 * `--threads N`: Ebb with `dns.workers: N` (N worker threads on one port, SO_REUSEPORT; 1 = the
 * process's own thread), Unbound with `num-threads: N`, dnsperf with N threads.
 *
 * Ebb's server runs in its own Node process, as `ebb dns` would. Every load run is bounded by dnsperf's
 * -l (seconds) and by a kill timer; only the processes started here are ended, by their PID. With
 * `--runs N` both are measured N times (alternating) and the figures are the medians.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolView } from '../src/core/index.ts';
import { createDnsServer } from '../src/dns/index.ts';
import { nodeBin, nodeFlags, runProcess, which } from '../test/harness/managed-process.ts';
import { freePort } from '../test/harness/ports.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { cpuSeconds, scratchDir, startProcess } from './lib/processes.ts';
import { fixed, median, sum } from './lib/stats.ts';

const FQDN = 'pool1.ebb.test';
const HOST = '127.0.0.1';

/** The demo pool's shape: three members, a SIP front end on UDP and TCP, and an echo service. */
function benchView(): PoolView {
  const members = [1, 2, 3].map((n) => ({
    id: `fe0${n}`,
    addresses: [`127.0.0.${10 + n}`],
    agentUp: true,
    services: [
      {
        id: 'frontend',
        state: 'running' as const,
        startup: 'automatic' as const,
        accepting: true,
        sessions: 0,
        listeners: [
          { protocol: 'sip' as const, transport: 'udp' as const, port: 5060 },
          { protocol: 'sip' as const, transport: 'tcp' as const, port: 5060 },
        ],
      },
      {
        id: 'echo',
        state: 'running' as const,
        startup: 'automatic' as const,
        accepting: true,
        sessions: 0,
        listeners: [{ protocol: 'tcp' as const, transport: 'tcp' as const, port: 7000 }],
      },
    ],
  }));
  return { name: 'pool1', fqdn: FQDN, dnsTtl: 5, members };
}

/** The query mix: mostly the pool name, as clients resolve it, plus the other kinds of name. */
const QUERIES = [
  `${FQDN} A`,
  `${FQDN} A`,
  `${FQDN} A`,
  `${FQDN} A`,
  `${FQDN} AAAA`,
  `frontend.${FQDN} A`,
  `echo.${FQDN} A`,
  `fe01.${FQDN} A`,
  `_frontend._udp.${FQDN} SRV`,
  `nobody.${FQDN} A`,
];

function unboundConfig(dir: string, port: number, threads: number): string {
  const view = benchView();
  const rr = (line: string): string => `  local-data: "${line}"`;
  const addr = (name: string, a: string): string => rr(`${name}. 5 IN A ${a}`);
  const lines = [
    'server:',
    `  num-threads: ${threads}`,
    `  interface: ${HOST}@${port}`,
    `  port: ${port}`,
    '  do-ip6: no',
    '  do-daemonize: no',
    '  chroot: ""',
    '  username: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${join(dir, 'unbound.pid')}"`,
    '  use-syslog: no',
    `  logfile: "${join(dir, 'unbound.log')}"`,
    '  verbosity: 0',
    '  access-control: 127.0.0.0/8 allow',
    '  module-config: "iterator"',
    '  minimal-responses: no',
    `  local-zone: "${FQDN}." static`,
    rr(`${FQDN}. 5 IN SOA ns.${FQDN}. hostmaster.${FQDN}. 1 3600 600 86400 5`),
    rr(`${FQDN}. 5 IN NS ns.${FQDN}.`),
    rr(`ns.${FQDN}. 5 IN A ${HOST}`),
    ...view.members.flatMap((m) => [
      addr(FQDN, m.addresses[0]!),
      addr(`frontend.${FQDN}`, m.addresses[0]!),
      addr(`echo.${FQDN}`, m.addresses[0]!),
      addr(`${m.id}.${FQDN}`, m.addresses[0]!),
      rr(`_frontend._udp.${FQDN}. 5 IN SRV 10 10 5060 ${m.id}.${FQDN}.`),
      rr(`_frontend._tcp.${FQDN}. 5 IN SRV 10 10 5060 ${m.id}.${FQDN}.`),
      rr(`_echo._tcp.${FQDN}. 5 IN SRV 10 10 7000 ${m.id}.${FQDN}.`),
    ]),
    'remote-control:',
    '  control-enable: no',
  ];
  return lines.join('\n') + '\n';
}

/** Waits until a server answers one query over UDP; bounded. */
async function waitForDns(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = spawnSync(
      'dig',
      ['@' + HOST, '-p', String(port), '+time=1', '+tries=1', '+short', FQDN, 'SOA'],
      {
        encoding: 'utf8',
        timeout: 3000,
      },
    );
    if (r.status === 0 && r.stdout.trim() !== '') return;
    await sleep(100);
  }
  throw new Error(`no DNS answer on ${HOST}:${port} after ${timeoutMs} ms`);
}

interface PerfResult {
  qps: number;
  /** The server's CPU time per completed query, µs: its cost whatever else the machine does. */
  cpuUsPerQuery: number;
  sent: number;
  completed: number;
  lost: number;
  latencyAvgMs: number;
  output: string;
}

async function dnsperf(
  port: number,
  pid: number,
  dataFile: string,
  seconds: number,
  threads: number,
): Promise<PerfResult> {
  const args = ['-s', HOST, '-p', String(port), '-d', dataFile, '-l', String(seconds)];
  const cpu0 = cpuSeconds(pid);
  const r = await runProcess('dnsperf', [...args, '-c', '8', '-q', '200', '-T', String(threads)], {
    timeoutMs: (seconds + 15) * 1000,
  });
  const cpu = cpuSeconds(pid) - cpu0;
  const output = r.stdout + r.stderr;
  const num = (re: RegExp): number => Number(re.exec(output)?.[1] ?? NaN);
  const result = {
    qps: num(/Queries per second:\s+([\d.]+)/),
    cpuUsPerQuery: (cpu / num(/Queries completed:\s+(\d+)/)) * 1e6,
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    latencyAvgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    output,
  };
  if (r.code !== 0 || Number.isNaN(result.qps))
    throw new Error(`dnsperf failed (exit ${r.code}):\n${output}`);
  return result;
}

/** Runs in the child: Ebb's DNS server alone in its process, like `ebb dns`. */
async function serveEbb(port: number, workers: number): Promise<void> {
  const view = benchView();
  const server = createDnsServer({ listen: { host: HOST, port }, view: () => view, workers });
  await server.start();
  process.stdout.write(`listening ${server.port}\n`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

async function main(): Promise<void> {
  // The child of this benchmark: `dns-qps.ts --serve-ebb PORT`.
  if (process.argv[2] === '--serve-ebb') return serveEbb(Number(process.argv[3]), Number(process.argv[4]));
  const bench = startBench('dns-qps', {
    numbers: { seconds: [10, 1, 120], runs: [1, 1, 10], threads: [1, 1, 8] },
  });
  const { seconds, runs, threads } = bench.numbers;
  const missing = ['dnsperf', 'unbound', 'dig'].filter((c) => !which(c));
  if (missing.length > 0) {
    console.error(`dns-qps: needs ${missing.join(', ')} (apt-get install dnsperf unbound dnsutils)`);
    process.exitCode = 2;
    return;
  }
  const dir = scratchDir('ebb-bench-dns-');
  const dataFile = join(dir, 'queries.txt');
  writeFileSync(dataFile, QUERIES.join('\n') + '\n');

  const ebbPort = await freePort(HOST);
  const ebb = startProcess('ebb dns server', nodeBin, [
    ...nodeFlags,
    import.meta.filename,
    '--serve-ebb',
    String(ebbPort),
    String(threads),
  ]);
  const unboundPort = await freePort(HOST);
  const confFile = join(dir, 'unbound.conf');
  writeFileSync(confFile, unboundConfig(dir, unboundPort, threads));
  const unbound = startProcess('unbound', 'unbound', ['-d', '-c', confFile]);
  try {
    await Promise.all([waitForDns(ebbPort), waitForDns(unboundPort)]);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nebb: ${ebb.output}\nunbound: ${unbound.output}`, {
      cause: err,
    });
  }

  bench.log(
    `dns-qps: dnsperf -T ${threads}, ${seconds} s each, 8 clients, 200 outstanding, ${QUERIES.length}-query mix, loopback; ` +
      `Ebb dns.workers ${threads}, Unbound num-threads ${threads}; ${runs} run(s)`,
  );
  const pidOf = new Map([
    [ebbPort, ebb.pid],
    [unboundPort, unbound.pid],
  ]);
  await dnsperf(ebbPort, ebb.pid, dataFile, Math.min(2, seconds), threads); // warm-up: let V8 optimise the hot path
  const describe = (r: PerfResult) =>
    `${r.qps.toFixed(0)} q/s, ${r.cpuUsPerQuery.toFixed(1)} µs CPU/q, completed ${r.completed}/${r.sent}, lost ${r.lost}, avg latency ${r.latencyAvgMs.toFixed(3)} ms`;
  const results = await eachRun(
    bench,
    runs,
    async (run) => {
      // Alternate which server goes first, so neither always runs on a cooler machine.
      const order = run % 2 === 0 ? [ebbPort, unboundPort] : [unboundPort, ebbPort];
      const byPort = new Map<number, PerfResult>();
      for (const port of order)
        byPort.set(port, await dnsperf(port, pidOf.get(port)!, dataFile, seconds, threads));
      return { ebb: byPort.get(ebbPort)!, unbound: byPort.get(unboundPort)! };
    },
    (r) => `ebb ${describe(r.ebb)} | unbound ${describe(r.unbound)}`,
  );
  const figure = (pick: (r: { ebb: PerfResult; unbound: PerfResult }) => PerfResult) => ({
    qps: median(results.map((r) => pick(r).qps)),
    cpuUsPerQuery: median(results.map((r) => pick(r).cpuUsPerQuery)),
    latencyAvgMs: median(results.map((r) => pick(r).latencyAvgMs)),
    lost: sum(results, (r) => pick(r).lost),
  });
  const e = figure((r) => r.ebb);
  const u = figure((r) => r.unbound);
  const doc = {
    benchmark: 'dns-qps',
    machine: bench.machine,
    runs,
    seconds,
    threads,
    queries: QUERIES.length,
    ebb: e,
    unbound: u,
    ratio: e.qps / u.qps,
    perRun: results.map((r) => ({
      ebb: { ...r.ebb, output: undefined },
      unbound: { ...r.unbound, output: undefined },
    })),
  };
  report(bench, doc, [
    ['figure (median of runs)', 'ebb', 'unbound', 'ebb/unbound'],
    ['queries/s', fixed(e.qps, 0), fixed(u.qps, 0), fixed(e.qps / u.qps)],
    [
      'server CPU µs per query',
      fixed(e.cpuUsPerQuery, 2),
      fixed(u.cpuUsPerQuery, 2),
      fixed(e.cpuUsPerQuery / u.cpuUsPerQuery),
    ],
    [
      'average latency (ms)',
      fixed(e.latencyAvgMs, 3),
      fixed(u.latencyAvgMs, 3),
      fixed(e.latencyAvgMs / u.latencyAvgMs),
    ],
    ['queries lost', String(e.lost), String(u.lost), '—'],
  ]);
}

await runBench(main);
