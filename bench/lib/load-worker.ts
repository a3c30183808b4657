/**
 * The TCP load tool, one process per worker, the same for every target (direct, HAProxy, Ebb).
 *
 *   node bench/lib/load-worker.ts --mode conn|stream|hold --host H --port P [options]
 *
 * Prints "ready", waits for "go" on stdin, runs, and prints one JSON line with the result.
 * - conn:   `--concurrency` loops of connect, send `--bytes`, read them back, close (end, wait for the
 *           peer's FIN); bounded by `--seconds` and `--max-connections`.
 * - stream: `--connections` long connections, each keeping `--window` bytes in flight in `--chunk`
 *           sized writes and counting the bytes echoed back; bounded by `--seconds`.
 * - hold:   opens `--connections` sessions (`--concurrency` at a time), one small round trip each, then
 *           holds them idle until "close" arrives on stdin (or `--seconds` pass), then closes them.
 */
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Reservoir } from './stats.ts';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'conn' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '50' },
    bytes: { type: 'string', default: '1024' },
    'max-connections': { type: 'string', default: '5000000' },
    connections: { type: 'string', default: '4' },
    chunk: { type: 'string', default: '65536' },
    window: { type: 'string', default: '262144' },
    'local-addresses': { type: 'string', default: '' },
  },
});

const host = values.host;
const port = Number(values.port);
const seconds = Math.min(600, Math.max(0.2, Number(values.seconds)));
const localAddresses = values['local-addresses'] ? values['local-addresses'].split(',') : [];

const lines = createInterface({ input: process.stdin });
const commands: string[] = [];
const waiters: Array<(line: string) => void> = [];
lines.on('line', (line) => {
  const w = waiters.shift();
  if (w) w(line.trim());
  else commands.push(line.trim());
});
function nextCommand(): Promise<string> {
  const queued = commands.shift();
  if (queued !== undefined) return Promise.resolve(queued);
  return new Promise((resolve) => waiters.push(resolve));
}
// The parent going away ends this worker too.
lines.on('close', () => setTimeout(() => process.exit(0), 100).unref());

function cpuOf(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

async function connLoad(): Promise<object> {
  const concurrency = Math.max(1, Number(values.concurrency));
  const payload = Buffer.alloc(Math.max(1, Number(values.bytes)), 'x');
  const maxConnections = Number(values['max-connections']);
  const latency = new Reservoir(20_000);
  const errors: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let started = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let lastDone = t0;

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const begin = performance.now();
      const socket = connect({ host, port, noDelay: true });
      let got = 0;
      let settled = false;
      const finish = (success: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (success) {
          ok++;
          latency.add(Math.round((performance.now() - begin) * 100) / 100);
        } else failed++;
        lastDone = performance.now();
        resolve();
      };
      const timer = setTimeout(() => {
        bump(errors, 'timeout');
        socket.destroy();
        finish(false);
      }, 10_000);
      socket.once('connect', () => socket.write(payload));
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= payload.length) socket.end();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        bump(errors, err.code ?? 'error');
        socket.destroy();
      });
      socket.once('close', () => finish(got >= payload.length));
    });

  const loop = async () => {
    while (performance.now() < end && started < maxConnections) {
      started++;
      await one();
    }
  };
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (lastDone - t0) / 1000;
  return { mode: 'conn', ok, failed, errors, elapsed, cpuSeconds: cpuOf(cpu0), latencyMs: latency.values };
}

async function streamLoad(): Promise<object> {
  const n = Math.max(1, Number(values.connections));
  const chunk = Buffer.alloc(Math.max(1, Number(values.chunk)), 'y');
  const windowBytes = Math.max(chunk.length, Number(values.window));
  const errors: Record<string, number> = {};
  let received = 0;
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = connect({ host, port, noDelay: true });
          socket.once('connect', () => resolve());
          socket.once('error', reject);
          sockets.push(socket);
        }),
    ),
  );
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const endAt = t0 + seconds * 1000;
  let measuring = true;
  await new Promise<void>((done) => {
    let open = sockets.length;
    for (const socket of sockets) {
      let sent = 0;
      let echoed = 0;
      const pump = () => {
        while (measuring && sent - echoed < windowBytes) {
          sent += chunk.length;
          if (!socket.write(chunk)) break;
        }
      };
      socket.removeAllListeners('error');
      socket.on('error', (err: NodeJS.ErrnoException) => bump(errors, err.code ?? 'error'));
      socket.on('data', (d: Buffer) => {
        echoed += d.length;
        if (measuring) received += d.length;
        pump();
      });
      socket.on('drain', pump);
      socket.once('close', () => {
        if (--open === 0) done();
      });
      pump();
    }
    setTimeout(() => {
      measuring = false;
      for (const socket of sockets) socket.destroy();
    }, endAt - performance.now());
  });
  return {
    mode: 'stream',
    bytes: received,
    elapsed: seconds,
    cpuSeconds: cpuOf(cpu0),
    connections: n,
    errors,
  };
}

async function hold(): Promise<object> {
  const n = Math.max(1, Number(values.connections));
  const concurrency = Math.max(1, Number(values.concurrency));
  const errors: Record<string, number> = {};
  const held: Socket[] = [];
  let failed = 0;
  let next = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const local =
        localAddresses.length > 0 ? { localAddress: localAddresses[i % localAddresses.length] } : {};
      const socket = connect({ host, port, ...local });
      let done = false;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (ok) held.push(socket);
        else {
          failed++;
          socket.destroy();
        }
        resolve();
      };
      const timer = setTimeout(() => {
        bump(errors, 'timeout');
        finish(false);
      }, 10_000);
      socket.once('connect', () => socket.write('hold\n'));
      socket.once('data', () => finish(true));
      socket.on('error', (err: NodeJS.ErrnoException) => {
        bump(errors, err.code ?? 'error');
        finish(false);
      });
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await one(next++);
    }),
  );
  const openSeconds = (performance.now() - t0) / 1000;
  process.stdout.write(
    `${JSON.stringify({ mode: 'hold', event: 'held', held: held.length, failed, errors, openSeconds })}\n`,
  );
  await Promise.race([waitFor('close'), new Promise((r) => setTimeout(r, seconds * 1000))]);
  await Promise.all(
    held.map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) return resolve();
          socket.once('close', () => resolve());
          socket.end();
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 5000).unref();
        }),
    ),
  );
  return { mode: 'hold', event: 'closed', held: held.length };
}

async function waitFor(command: string): Promise<void> {
  for (;;) if ((await nextCommand()) === command) return;
}

process.stdout.write('ready\n');
await waitFor('go');
const mode = values.mode;
const result = mode === 'stream' ? await streamLoad() : mode === 'hold' ? await hold() : await connLoad();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
