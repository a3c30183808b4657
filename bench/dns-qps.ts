/**
 * SPEC §9 "DNS queries/s": dnsperf against Ebb's DNS server and against Unbound serving the same names as
 * local data, one after the other in the same run, each with one thread on loopback.
 *
 *   node bench/dns-qps.ts [--seconds N]      (needs Debian's dnsperf and unbound)
 *
 * Ebb's server runs in its own Node process, as `ebb dns` would. Every load run is bounded by dnsperf's
 * -l (seconds) and by a kill timer; only the processes started here are ended, by their PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { PoolView } from '../src/core/index.ts';
import { DnsServer } from '../src/dns/index.ts';

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

function unboundConfig(dir: string, port: number): string {
  const view = benchView();
  const rr = (line: string): string => `  local-data: "${line}"`;
  const addr = (name: string, a: string): string => rr(`${name}. 5 IN A ${a}`);
  const lines = [
    'server:',
    '  num-threads: 1',
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
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
  sent: number;
  completed: number;
  lost: number;
  latencyAvgMs: number;
  output: string;
}

function dnsperf(port: number, dataFile: string, seconds: number): Promise<PerfResult> {
  return new Promise((resolve, reject) => {
    const args = [
      '-s',
      HOST,
      '-p',
      String(port),
      '-d',
      dataFile,
      '-l',
      String(seconds),
      '-c',
      '8',
      '-q',
      '200',
      '-T',
      '1',
    ];
    const child = spawn('dnsperf', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const num = (re: RegExp): number => Number(re.exec(output)?.[1] ?? NaN);
      const result = {
        qps: num(/Queries per second:\s+([\d.]+)/),
        sent: num(/Queries sent:\s+(\d+)/),
        completed: num(/Queries completed:\s+(\d+)/),
        lost: num(/Queries lost:\s+(\d+)/),
        latencyAvgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
        output,
      };
      if (code !== 0 || Number.isNaN(result.qps))
        reject(new Error(`dnsperf failed (exit ${code}):\n${output}`));
      else resolve(result);
    });
  });
}

/** Runs in the child: Ebb's DNS server alone in its process, like `ebb dns`. */
async function serveEbb(port: number): Promise<void> {
  const view = benchView();
  const server = new DnsServer({ listen: { host: HOST, port }, view: () => view });
  await server.start();
  process.stdout.write(`listening ${server.port}\n`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

function startChild(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(
    () => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'),
    5000,
  );
  await exited;
  clearTimeout(timer);
}

function report(name: string, r: PerfResult): void {
  console.log(
    `${name.padEnd(8)} ${r.qps.toFixed(0).padStart(8)} q/s   completed ${r.completed}/${r.sent}, lost ${r.lost}, ` +
      `avg latency ${r.latencyAvgMs.toFixed(3)} ms`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '10' }, 'serve-ebb': { type: 'string' } },
  });
  if (values['serve-ebb'] !== undefined) return serveEbb(Number(values['serve-ebb']));

  const seconds = Math.min(Math.max(Number(values.seconds) || 10, 1), 120);
  const missing = ['dnsperf', 'unbound', 'dig'].filter((c) => !which(c));
  if (missing.length > 0) {
    console.error(`dns-qps: needs ${missing.join(', ')} (apt-get install dnsperf unbound dnsutils)`);
    process.exitCode = 2;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ebb-bench-dns-'));
  const children: ChildProcess[] = [];
  try {
    const dataFile = join(dir, 'queries.txt');
    writeFileSync(dataFile, QUERIES.join('\n') + '\n');

    const ebbPort = await freePort();
    const ebb = startChild(process.execPath, [
      '--disable-warning=ExperimentalWarning',
      import.meta.filename,
      '--serve-ebb',
      String(ebbPort),
    ]);
    children.push(ebb);
    const unboundPort = await freePort();
    const confFile = join(dir, 'unbound.conf');
    writeFileSync(confFile, unboundConfig(dir, unboundPort));
    const unbound = startChild('unbound', ['-d', '-c', confFile]);
    children.push(unbound);
    await Promise.all([waitForDns(ebbPort), waitForDns(unboundPort)]);

    console.log(
      `dns-qps: dnsperf, ${seconds} s each, 8 clients, 200 outstanding, ${QUERIES.length}-query mix, loopback`,
    );
    await dnsperf(ebbPort, dataFile, Math.min(2, seconds)); // warm-up: let V8 optimise the hot path
    const ebbResult = await dnsperf(ebbPort, dataFile, seconds);
    const unboundResult = await dnsperf(unboundPort, dataFile, seconds);
    report('ebb', ebbResult);
    report('unbound', unboundResult);
    console.log(`ratio    ebb/unbound = ${(ebbResult.qps / unboundResult.qps).toFixed(2)}`);
  } finally {
    for (const child of children) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
