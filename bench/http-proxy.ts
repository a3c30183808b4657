/**
 * SPEC §10 / issue 10: an Ebb http listener beside Debian's HAProxy in `mode http` (`nbthread 1`: one
 * thread, as Ebb is one Node thread), in the same run, to the same upstreams: nginx (one worker, no
 * master) answering a 6-byte body for HTTP, and a Node `ws` echo server for WebSockets. wrk is the load
 * tool for HTTP.
 *
 *   node --disable-warning=ExperimentalWarning bench/http-proxy.ts [--runs 3] [--seconds 3]
 *        [--concurrency 50] [--ws-connections 50] [--ws-bytes 64] [--idle-websockets 10000]
 *        [--targets ebb,node,haproxy] [--threads 1] [--json]
 *
 * `--threads N` (default 1: the listener on this process's own thread): Ebb's listener on N worker
 * threads (`agent.workers: N`, SO_REUSEPORT) beside HAProxy with `nbthread N` (SPEC §13); the node floor
 * stays on one thread.
 *
 * Figures (medians over runs; targets in a rotating order each run):
 * - keep-alive req/s: wrk, one thread, `--concurrency` connections kept alive.
 * - new-connection req/s: the same with `Connection: close`, so every request is a new TCP connection.
 * - WebSocket messages/s: `--ws-connections` WebSockets each sending a `--ws-bytes` message and waiting
 *   for its echo; a message is one frame through the proxy one way (each round trip counts 2).
 * - RSS per idle WebSocket: the proxy's RSS growth while `--idle-websockets` WebSockets are open, / count.
 * The CPU columns are each process's CPU time over the measurement (100% = one core): the machine has
 * few cores, and the load tool, proxy and upstream share them; the load tool's own cost is shown.
 *
 * Ebb is the http listener run directly (`--role ebb` below: the class `ebb up` builds for an http
 * listener), in its own process. `node` is the floor of a proxy on Node's HTTP stack (see `Target`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { parseConfig } from '../src/config/index.ts';
import { createListener, type Listener } from '../src/listeners/index.ts';
import { HttpListener } from '../src/listeners/http/index.ts';
import { ebbNodeFlags } from '../test/harness/ebb-process.ts';
import type { ManagedProcess } from '../test/harness/managed-process.ts';
import { which } from '../test/harness/managed-process.ts';
import { freePort } from '../test/harness/ports.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { webSocketLoad, wrk } from './lib/http-load.ts';
import {
  childFdLimit,
  cpuSeconds,
  rssKiB,
  scratchDir,
  startNodeScript,
  startProcess,
} from './lib/processes.ts';
import { fixed, median, ratio, rotate } from './lib/stats.ts';

/**
 * `node` is the floor of any proxy written on Node's HTTP stack, for scale: node:http's server handing
 * each request to an undici pool as it came (no limits, no forwarding headers, no hop-by-hop handling,
 * no session counting), and WebSockets as a plain TCP pipe (no HTTP parsing at all). What Ebb costs
 * above it is Ebb's; what it costs above HAProxy is mostly Node's.
 */
const Target = { ebb: 'ebb', node: 'node', haproxy: 'haproxy' } as const;
type Target = (typeof Target)[keyof typeof Target];

interface Endpoints {
  http: number;
  ws: number;
  pid: number;
}

interface Sample {
  keepAliveRps: number;
  keepAliveCpu: number;
  newConnRps: number;
  newConnCpu: number;
  wsMessagesPerSecond: number;
  wsCpu: number;
  rssPerIdleWsKiB: number;
  /** wrk's CPU over the keep-alive measurement (100% = one core). */
  wrkCpu: number;
  /** The WebSocket load process's CPU. */
  wsClientCpu: number;
  upstreamCpu: number;
  errors: string[];
}

const host = '127.0.0.1';
const self = import.meta.filename;

// ---- child roles: the processes the benchmark starts from this same file ----

async function role(name: string, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      'http-port': { type: 'string' },
      'http-upstream': { type: 'string' },
      'ws-port': { type: 'string' },
      'ws-upstream': { type: 'string' },
      url: { type: 'string' },
      connections: { type: 'string' },
      seconds: { type: 'string' },
      bytes: { type: 'string' },
      count: { type: 'string' },
      threads: { type: 'string' },
    },
  });
  const num = (k: keyof typeof values) => Number(values[k]);
  if (name === 'ebb') {
    const threads = Number(values.threads ?? 1);
    const listeners = [
      ebbListener(num('http-port'), num('http-upstream'), threads),
      ebbListener(num('ws-port'), num('ws-upstream'), threads),
    ];
    for (const l of listeners) await l.open(false);
    process.stdout.write('ready\n');
    process.once(
      'SIGTERM',
      () => void Promise.all(listeners.map((l) => l.destroy())).then(() => process.exit(0)),
    );
    return;
  }
  if (name === 'node-floor') {
    const { createServer } = await import('node:http');
    const net = await import('node:net');
    const { Pool } = await import('undici');
    const pool = new Pool(`http://${host}:${num('http-upstream')}`, { connections: null, pipelining: 1 });
    const http = createServer((req, res) => {
      pool.dispatch(
        { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.rawHeaders, body: null },
        {
          onRequestStart() {},
          onResponseStart(_c, status, headers) {
            res.writeHead(status, headers as Record<string, string>);
          },
          onResponseData(_c, chunk) {
            res.write(chunk);
          },
          onResponseEnd() {
            res.end();
          },
          onResponseError() {
            res.destroy();
          },
        },
      );
    });
    const ws = net.createServer((client) => {
      const upstream = net.connect(num('ws-upstream'), host);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => http.listen(num('http-port'), host, 4096, resolve));
    await new Promise<void>((resolve) => ws.listen(num('ws-port'), host, 4096, resolve));
    process.stdout.write('ready\n');
    process.once('SIGTERM', () => process.exit(0));
    return;
  }
  if (name === 'ws-upstream') {
    const wss = new WebSocketServer({ host, port: num('port'), perMessageDeflate: false, backlog: 4096 });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      ws.on('error', () => ws.terminate());
    });
    wss.on('listening', () => process.stdout.write('listening\n'));
    return;
  }
  if (name === 'ws-load') {
    const payload = Buffer.alloc(num('bytes'), 0x61);
    const sockets = await openMany(values.url!, num('connections'), 100);
    let messages = 0;
    let running = true;
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    for (const ws of sockets) {
      ws.on('message', () => {
        messages += 2; // the message and its echo: two frames through the proxy
        if (running) ws.send(payload);
      });
      ws.send(payload);
    }
    await sleep(num('seconds') * 1000);
    running = false;
    const wall = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(
      `result ${JSON.stringify({ perSecond: messages / wall, cpu: (cpu.user + cpu.system) / 1e6 / wall })}\n`,
    );
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
  if (name === 'ws-hold') {
    const sockets = await openMany(values.url!, num('count'), 500);
    process.stdout.write(`held ${sockets.length}\n`);
    process.once('SIGTERM', () => process.exit(0));
    return;
  }
  throw new Error(`unknown role ${name}`);
}

/**
 * Ebb's http listener as the agent builds it: on the agent's thread, or with `agent.workers: threads`
 * as a `ThreadedListener` (SO_REUSEPORT, one listener per worker thread).
 */
function ebbListener(port: number, upstream: number, threads: number): Listener {
  if (threads <= 1) return new HttpListener({ host, port, upstream: { host, port: upstream } });
  const config = parseConfig(
    JSON.stringify({
      pool: { name: 'bench', fqdn: 'bench.ebb.test' },
      agent: { workers: threads },
      members: [
        {
          id: 'm1',
          address: host,
          services: [{ id: 'web', listeners: [{ protocol: 'http', port, upstream: `${host}:${upstream}` }] }],
        },
      ],
    }),
  );
  const service = config.members[0]!.services[0]!;
  return createListener(
    host,
    service.listeners[0]!,
    { onChange: () => {} },
    {
      member: 'm1',
      service,
      view: () => ({ name: 'bench', fqdn: 'bench.ebb.test', dnsTtl: 5, members: [] }),
      workers: threads,
    },
  );
}

/** Opens `count` WebSockets, at most `parallel` handshakes at once; rejects on the first failure. */
async function openMany(url: string, count: number, parallel: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.on('error', () => {});
      sockets.push(ws);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return sockets;
}

// ---- the peers ----

function nginxConfig(dir: string, port: number): string {
  return [
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    'error_log stderr error;',
    'events { worker_connections 20000; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir};`,
    '  keepalive_requests 1000000;',
    `  server { listen ${host}:${port} backlog=4096; location / { return 200 "hello\\n"; } }`,
    '}',
    '',
  ].join('\n');
}

function haproxyHttpConfig(
  endpoints: Endpoints,
  upstreams: { http: number; ws: number },
  maxconn: number,
  threads: number,
): string {
  return [
    'global',
    `  maxconn ${maxconn}`,
    `  nbthread ${threads}`,
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    // What Ebb adds too: the client's address and scheme.
    '  option forwardfor',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-keep-alive 30s',
    '  timeout tunnel 1h',
    'frontend http',
    `  bind ${host}:${endpoints.http}`,
    `  maxconn ${maxconn}`,
    '  http-request set-header X-Forwarded-Proto http',
    '  default_backend web',
    'frontend ws',
    `  bind ${host}:${endpoints.ws}`,
    `  maxconn ${maxconn}`,
    '  default_backend ws',
    'backend web',
    `  server web ${host}:${upstreams.http}`,
    'backend ws',
    `  server ws ${host}:${upstreams.ws}`,
    '',
  ].join('\n');
}

/** Waits until something accepts TCP connections on `port`. */
async function listening(port: number, proc: ManagedProcess, timeoutMs = 10_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!proc.running || Date.now() > deadline) throw new Error(`${port} does not listen: ${proc.output}`);
    await sleep(50);
  }
}

async function main(): Promise<void> {
  const bench = startBench('http-proxy', {
    numbers: {
      runs: [3, 1, 20],
      seconds: [3, 1, 60],
      concurrency: [50, 1, 1000],
      'ws-connections': [50, 1, 2000],
      'ws-bytes': [64, 1, 1 << 20],
      'idle-websockets': [10_000, 0, 20_000],
      threads: [1, 1, 8],
    },
    strings: { targets: 'ebb,node,haproxy' },
  });
  const n = bench.numbers;
  const log = bench.log;
  for (const tool of ['wrk', 'nginx']) {
    if (!which(tool))
      throw new Error(`http-proxy: ${tool} is not installed (apt-get install -y wrk nginx-light)`);
  }
  let targets = bench.strings.targets.split(',').filter((t): t is Target => t in Target);
  if (targets.includes(Target.haproxy) && !which('haproxy')) {
    log('http-proxy: haproxy is not installed: its column is skipped');
    targets = targets.filter((t) => t !== Target.haproxy);
  }
  const dir = scratchDir('ebb-bench-http-');
  // Each idle WebSocket is two descriptors in the proxy (client and upstream side); HAProxy sizes its
  // own limit from maxconn and refuses to start beyond the hard limit.
  const fdLimit = childFdLimit();
  const maxconn = Math.min(25_000, Math.floor((fdLimit - 200) / 2));
  const idleCount = Math.min(n['idle-websockets'], maxconn - 200);
  if (idleCount < n['idle-websockets']) {
    log(
      `http-proxy: the open-files limit (${fdLimit}) allows ${idleCount} idle WebSockets, not ${n['idle-websockets']}`,
    );
  }

  const nginxPort = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, nginxPort));
  const nginx = startProcess('nginx', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
  await listening(nginxPort, nginx);
  const wsPort = await freePort();
  const wsUpstream = startNodeScript('ws upstream', self, [
    '--role',
    'ws-upstream',
    '--port',
    String(wsPort),
  ]);
  await wsUpstream.waitForOutput(/listening/);

  const startProxy = async (t: Target): Promise<Endpoints & { proc: ManagedProcess }> => {
    if (t === Target.ebb || t === Target.node) {
      const [httpPort, wsFront] = [await freePort(), await freePort()];
      const ebb = startNodeScript(
        t,
        self,
        [
          '--role',
          t === Target.ebb ? 'ebb' : 'node-floor',
          '--http-port',
          String(httpPort),
          '--http-upstream',
          String(nginxPort),
          '--ws-port',
          String(wsFront),
          '--ws-upstream',
          String(wsPort),
          '--threads',
          String(t === Target.ebb ? n.threads : 1),
        ],
        // Both with the V8 flags `ebb` runs with (its young generation's size among them).
        { fdLimit, nodeArgs: ebbNodeFlags },
      );
      await ebb.waitForOutput(/ready/);
      return { http: httpPort, ws: wsFront, pid: ebb.pid, proc: ebb };
    }
    const e = { http: await freePort(), ws: await freePort(), pid: 0 };
    const config = join(dir, `haproxy-${e.http}.cfg`);
    writeFileSync(config, haproxyHttpConfig(e, { http: nginxPort, ws: wsPort }, maxconn, n.threads));
    const haproxy = startProcess('haproxy', 'haproxy', ['-db', '-f', config], { fdLimit });
    await listening(e.http, haproxy);
    return { ...e, pid: haproxy.pid, proc: haproxy };
  };
  const endpoints = new Map<Target, Endpoints>();
  for (const t of targets) endpoints.set(t, await startProxy(t));
  log(
    `http-proxy: ${n.runs} run(s) × ${n.seconds} s per figure; wrk -t1 -c${n.concurrency}; ` +
      `${n['ws-connections']} WebSockets × ${n['ws-bytes']} B ping-pong; ${idleCount} idle WebSockets; ` +
      `HAProxy ${targets.includes(Target.haproxy) ? `nbthread ${n.threads}, mode http` : 'skipped'}; ` +
      `Ebb on ${n.threads} thread(s) (agent.workers), the node floor on 1; upstreams: nginx (1 worker), Node ws echo`,
  );

  const cpuOver = async <T>(pid: number, work: () => Promise<T>): Promise<{ r: T; cpu: number }> => {
    const c0 = cpuSeconds(pid);
    const t0 = performance.now();
    const r = await work();
    return { r, cpu: (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000) };
  };
  const wsLoad = (port: number, seconds: number) =>
    webSocketLoad(`ws://${host}:${port}/`, {
      connections: n['ws-connections'],
      seconds,
      bytes: n['ws-bytes'],
    });
  /**
   * RSS growth per idle WebSocket, in a proxy process of its own started for it: a process that has
   * carried load keeps the heap it grew, and would hide what idle sessions cost.
   */
  const idleRss = async (t: Target): Promise<number> => {
    const count = idleCount;
    if (count <= 0) return Number.NaN;
    const e = await startProxy(t);
    try {
      await sleep(1000);
      const before = rssKiB(e.pid);
      const hold = startNodeScript(
        'ws hold',
        self,
        ['--role', 'ws-hold', '--url', `ws://${host}:${e.ws}/`, '--count', String(count)],
        { fdLimit },
      );
      await hold.waitForOutput(/held \d+/, 120_000);
      await sleep(2000);
      const after = rssKiB(e.pid);
      await hold.stop();
      return (after - before) / count;
    } finally {
      await e.proc.stop();
    }
  };

  // Warm-up: V8 optimises Ebb's hot paths; nothing here counts.
  for (const t of targets) {
    const e = endpoints.get(t)!;
    await wrk(`http://${host}:${e.http}/`, n.concurrency, 1, false);
    await wsLoad(e.ws, 1);
  }

  const samples = new Map<Target, Sample[]>(targets.map((t) => [t, []]));
  await eachRun(
    bench,
    n.runs,
    async (run) => {
      const partial = new Map<Target, Sample>();
      for (const t of rotate(targets, run)) {
        const e = endpoints.get(t)!;
        await sleep(1000);
        const up0 = cpuSeconds(nginx.pid);
        const ka = await cpuOver(e.pid, () =>
          wrk(`http://${host}:${e.http}/`, n.concurrency, n.seconds, false),
        );
        const upstreamCpu = (cpuSeconds(nginx.pid) - up0) / n.seconds;
        await sleep(1000);
        const nc = await cpuOver(e.pid, () =>
          wrk(`http://${host}:${e.http}/`, n.concurrency, n.seconds, true),
        );
        await sleep(500);
        const ws = await cpuOver(e.pid, () => wsLoad(e.ws, n.seconds));
        const rss = await idleRss(t);
        partial.set(t, {
          keepAliveRps: ka.r.rps,
          keepAliveCpu: ka.cpu,
          newConnRps: nc.r.rps,
          newConnCpu: nc.cpu,
          wsMessagesPerSecond: ws.r.perSecond,
          wsCpu: ws.cpu,
          rssPerIdleWsKiB: rss,
          wrkCpu: ka.r.cpu,
          wsClientCpu: ws.r.cpu,
          upstreamCpu,
          errors: [ka.r.errors, nc.r.errors].filter((x) => x !== ''),
        });
      }
      for (const [t, s] of partial) samples.get(t)!.push(s);
      return partial;
    },
    (partial) =>
      [...partial]
        .map(
          ([t, s]) =>
            `${t} ${s.keepAliveRps.toFixed(0)} req/s ka, ${s.newConnRps.toFixed(0)} req/s new, ` +
            `${s.wsMessagesPerSecond.toFixed(0)} ws msg/s, ${fixed(s.rssPerIdleWsKiB, 1)} KiB/ws` +
            (s.errors.length ? ` (${s.errors.join('; ')})` : ''),
        )
        .join(' | '),
  );

  const med = (t: Target, f: (s: Sample) => number) => median(samples.get(t)!.map(f));
  const figure = (t: Target) => ({
    keepAliveRps: med(t, (s) => s.keepAliveRps),
    newConnRps: med(t, (s) => s.newConnRps),
    wsMessagesPerSecond: med(t, (s) => s.wsMessagesPerSecond),
    rssPerIdleWsKiB: med(t, (s) => s.rssPerIdleWsKiB),
    proxyCpuKeepAlive: med(t, (s) => s.keepAliveCpu),
    proxyCpuNewConn: med(t, (s) => s.newConnCpu),
    proxyCpuWs: med(t, (s) => s.wsCpu),
    /** Proxy CPU per request, µs: the cost of one request whatever the machine's contention. */
    cpuUsPerRequest: med(t, (s) => (s.keepAliveCpu / s.keepAliveRps) * 1e6),
    wrkCpu: med(t, (s) => s.wrkCpu),
    wsClientCpu: med(t, (s) => s.wsClientCpu),
    upstreamCpu: med(t, (s) => s.upstreamCpu),
  });
  const fig = Object.fromEntries(targets.map((t) => [t, figure(t)])) as Partial<
    Record<Target, ReturnType<typeof figure>>
  >;
  const e = fig.ebb;
  const h = fig.haproxy;
  const ratios =
    e && h
      ? {
          keepAliveRps: ratio(e.keepAliveRps, h.keepAliveRps),
          newConnRps: ratio(e.newConnRps, h.newConnRps),
          wsMessagesPerSecond: ratio(e.wsMessagesPerSecond, h.wsMessagesPerSecond),
          rssPerIdleWs: ratio(e.rssPerIdleWsKiB, h.rssPerIdleWsKiB),
          cpuUsPerRequest: ratio(e.cpuUsPerRequest, h.cpuUsPerRequest),
        }
      : null;
  const floor = fig.node;
  const rows: string[][] = [
    ['figure', ...targets, ...(ratios ? ['ebb/haproxy'] : []), ...(e && floor ? ['ebb/node'] : [])],
  ];
  const row = (label: string, f: (x: ReturnType<typeof figure>) => number, digits: number, r?: number) =>
    rows.push([
      label,
      ...targets.map((t) => fixed(f(fig[t]!), digits)),
      ...(ratios ? [r === undefined ? '' : fixed(r)] : []),
      ...(e && floor ? [r === undefined ? '' : fixed(ratio(f(e), f(floor)))] : []),
    ]);
  row('keep-alive req/s', (x) => x.keepAliveRps, 0, ratios?.keepAliveRps);
  row('new-connection req/s', (x) => x.newConnRps, 0, ratios?.newConnRps);
  row('WebSocket messages/s', (x) => x.wsMessagesPerSecond, 0, ratios?.wsMessagesPerSecond);
  row('RSS per idle WebSocket, KiB', (x) => x.rssPerIdleWsKiB, 1, ratios?.rssPerIdleWs);
  row('proxy CPU µs per request (keep-alive)', (x) => x.cpuUsPerRequest, 1, ratios?.cpuUsPerRequest);
  row('proxy CPU, keep-alive load', (x) => x.proxyCpuKeepAlive, 2);
  row('proxy CPU, new-connection load', (x) => x.proxyCpuNewConn, 2);
  row('proxy CPU, WebSocket load', (x) => x.proxyCpuWs, 2);
  row('wrk CPU (load tool), keep-alive', (x) => x.wrkCpu, 2);
  row('WebSocket client CPU (load tool)', (x) => x.wsClientCpu, 2);
  row('nginx CPU, keep-alive', (x) => x.upstreamCpu, 2);
  report(
    bench,
    {
      benchmark: 'http-proxy',
      machine: bench.machine,
      options: { ...n, idleWebSocketsHeld: idleCount },
      figures: fig,
      ratios,
      target: 'ebb/haproxy ≥ 0.8 on every rate; memory ≤ 2× HAProxy',
      perRun: Object.fromEntries(targets.map((t) => [t, samples.get(t)])),
    },
    rows,
    [
      'CPU: 1.00 = one core busy for the whole measurement. Load tools, proxy and upstream share the machine.',
      'WebSocket messages: frames through the proxy, both directions counted.',
    ],
  );
}

const roleIndex = process.argv.indexOf('--role');
if (roleIndex >= 0) await role(process.argv[roleIndex + 1]!, process.argv.slice(roleIndex + 2));
else await runBench(main);
