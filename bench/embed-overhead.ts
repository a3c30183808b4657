/**
 * Issue 13 / SPEC §12: what embedding Ebb costs a Node server. The same node:http + ws echo server runs
 * twice, side by side in the same run: plain (it listens itself) and with the library attached
 * (`embed()` on a sqlite store; the agent listens for it, counts every request and WebSocket, and
 * writes status as `ebb agent` does). Target: at most 3% fewer requests/s and WebSocket messages/s.
 *
 *   node --disable-warning=ExperimentalWarning bench/embed-overhead.ts [--runs 5] [--seconds 3]
 *        [--concurrency 50] [--ws-connections 50] [--ws-bytes 64] [--short] [--json]
 *
 * Figures (medians over runs; the two servers in a rotating order each run):
 * - keep-alive req/s: wrk, one thread, `--concurrency` connections kept alive, a 2-byte body.
 * - WebSocket messages/s: `--ws-connections` WebSockets each sending a `--ws-bytes` message and waiting
 *   for its echo (http-proxy.ts's `ws-load` role; each round trip counts 2).
 * - server CPU µs per request: CPU time of the server process over the keep-alive load / requests.
 * `--short`: 3 runs × 2 s, for a quick look on a loaded machine.
 *
 * The pool config pins `agent.workers: 1`; an embedded listener runs in the application's thread anyway.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { WebSocketServer } from 'ws';
import { embed } from '../src/embed/index.ts';
import { which } from '../test/harness/managed-process.ts';
import { freePort } from '../test/harness/ports.ts';
import { eachRun, report, runBench, startBench } from './lib/bench-cli.ts';
import { webSocketLoad, wrk } from './lib/http-load.ts';
import { cpuSeconds, scratchDir, startNodeScript } from './lib/processes.ts';
import { fixed, median, rotate } from './lib/stats.ts';

const Target = { plain: 'plain', embedded: 'embedded' } as const;
type Target = (typeof Target)[keyof typeof Target];

const host = '127.0.0.1';
const self = import.meta.filename;

interface Sample {
  rps: number;
  cpuUsPerRequest: number;
  wsMessagesPerSecond: number;
}

/** The server under test, as a child process: `--role server [--config FILE]` (with a config: embedded). */
async function server(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, config: { type: 'string' } } });
  const http = createServer((_req, res) => res.end('ok'));
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
  if (values.config) {
    const agent = await embed({
      config: values.config,
      member: 'b1',
      service: 'web',
      logger: pino({ level: 'error' }),
    });
    await agent.attach(http);
    agent.attachWebSocketServer(wss);
    process.once('SIGTERM', () => void agent.destroy().then(() => process.exit(0)));
  } else {
    await new Promise<void>((resolve) =>
      http.listen({ host, port: Number(values.port), backlog: 4096 }, resolve),
    );
    process.once('SIGTERM', () => process.exit(0));
  }
  process.stdout.write('ready\n');
}

async function main(): Promise<void> {
  const bench = startBench('embed-overhead', {
    numbers: {
      runs: [5, 1, 20],
      seconds: [3, 1, 60],
      concurrency: [50, 1, 1000],
      'ws-connections': [50, 1, 2000],
      'ws-bytes': [64, 1, 1 << 20],
    },
    flags: ['short'],
  });
  const n = { ...bench.numbers, ...(bench.flags.short ? { runs: 3, seconds: 2 } : {}) };
  if (!which('wrk')) throw new Error('embed-overhead: wrk is not installed (apt-get install -y wrk)');
  const dir = scratchDir('ebb-bench-embed-');
  const [plainPort, embeddedPort] = [await freePort(), await freePort()];
  const config = join(dir, 'pool.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      pool: { name: 'bench', fqdn: 'bench.ebb.test' },
      store: `sqlite:${join(dir, 'state.db')}`,
      // Pinned although an embedded listener runs in the application's own thread whatever it says.
      agent: { localState: join(dir, 'local'), workers: 1 },
      members: [
        {
          id: 'b1',
          address: host,
          services: [{ id: 'web', listeners: [{ protocol: 'http', mode: 'embedded', port: embeddedPort }] }],
        },
      ],
    }),
  );
  const servers = new Map<Target, { port: number; pid: number }>();
  for (const [t, args] of [
    [Target.plain, ['--port', String(plainPort)]],
    [Target.embedded, ['--config', config]],
  ] as const) {
    const proc = startNodeScript(`${t} server`, self, ['--role', 'server', ...args]);
    await proc.waitForOutput(/ready/);
    servers.set(t, { port: t === Target.plain ? plainPort : embeddedPort, pid: proc.pid });
  }
  const wsLoad = async (port: number, seconds: number): Promise<number> =>
    (
      await webSocketLoad(`ws://${host}:${port}/`, {
        connections: n['ws-connections'],
        seconds,
        bytes: n['ws-bytes'],
      })
    ).perSecond;
  bench.log(
    `embed-overhead: ${n.runs} run(s) × ${n.seconds} s per figure; wrk -t1 -c${n.concurrency}; ` +
      `${n['ws-connections']} WebSockets × ${n['ws-bytes']} B ping-pong; node:http + ws, plain vs embed()`,
  );
  for (const s of servers.values()) {
    await wrk(`http://${host}:${s.port}/`, n.concurrency, 1); // warm-up: nothing here counts
    await wsLoad(s.port, 1);
  }
  const samples = new Map<Target, Sample[]>([
    [Target.plain, []],
    [Target.embedded, []],
  ]);
  await eachRun(
    bench,
    n.runs,
    async (run) => {
      const partial = new Map<Target, Sample>();
      for (const t of rotate([Target.plain, Target.embedded], run)) {
        const s = servers.get(t)!;
        await sleep(500);
        const cpu0 = cpuSeconds(s.pid);
        const { rps } = await wrk(`http://${host}:${s.port}/`, n.concurrency, n.seconds);
        const cpuUsPerRequest = ((cpuSeconds(s.pid) - cpu0) / (rps * n.seconds)) * 1e6;
        await sleep(500);
        partial.set(t, { rps, cpuUsPerRequest, wsMessagesPerSecond: await wsLoad(s.port, n.seconds) });
      }
      for (const [t, s] of partial) samples.get(t)!.push(s);
      return partial;
    },
    (partial) =>
      [...partial]
        .map(([t, s]) => `${t} ${s.rps.toFixed(0)} req/s, ${s.wsMessagesPerSecond.toFixed(0)} ws msg/s`)
        .join(' | '),
  );
  const med = (t: Target, f: (s: Sample) => number) => median(samples.get(t)!.map(f));
  const figure = (t: Target) => ({
    rps: med(t, (s) => s.rps),
    wsMessagesPerSecond: med(t, (s) => s.wsMessagesPerSecond),
    cpuUsPerRequest: med(t, (s) => s.cpuUsPerRequest),
  });
  const plain = figure(Target.plain);
  const embedded = figure(Target.embedded);
  /** How much the library takes away, in % of the plain server's figure (negative: it did better). */
  const overhead = (p: number, e: number) => ((p - e) / p) * 100;
  const overheads = {
    rpsPercent: overhead(plain.rps, embedded.rps),
    wsMessagesPercent: overhead(plain.wsMessagesPerSecond, embedded.wsMessagesPerSecond),
    cpuPerRequestPercent: -overhead(plain.cpuUsPerRequest, embedded.cpuUsPerRequest),
  };
  report(
    bench,
    {
      benchmark: 'embed-overhead',
      machine: bench.machine,
      options: n,
      figures: { plain, embedded },
      overheads,
    },
    [
      ['figure', 'plain', 'embedded', 'overhead'],
      ['keep-alive req/s', fixed(plain.rps, 0), fixed(embedded.rps, 0), `${fixed(overheads.rpsPercent, 1)}%`],
      [
        'WebSocket messages/s',
        fixed(plain.wsMessagesPerSecond, 0),
        fixed(embedded.wsMessagesPerSecond, 0),
        `${fixed(overheads.wsMessagesPercent, 1)}%`,
      ],
      [
        'server CPU µs per request',
        fixed(plain.cpuUsPerRequest, 1),
        fixed(embedded.cpuUsPerRequest, 1),
        `${fixed(overheads.cpuPerRequestPercent, 1)}%`,
      ],
    ],
    [
      'Target: overhead ≤ 3% on req/s and WebSocket messages/s. Both servers run at once and are measured',
      'in turn, so a loaded machine weighs on both alike; medians over the runs.',
    ],
  );
}

const roleAt = process.argv.indexOf('--role');
if (roleAt >= 0) await server(process.argv.slice(roleAt + 2));
else await runBench(main);
