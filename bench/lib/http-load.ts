/**
 * The HTTP load tools the HTTP benchmarks share: wrk (one thread) with the CPU it used itself, and the
 * WebSocket ping-pong client (the `ws-load` role of `bench/http-proxy.ts`, in its own process).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startNodeScript } from './processes.ts';

const httpProxyBench = join(import.meta.dirname, '..', 'http-proxy.ts');

/** Runs wrk (one thread) and, through the shell's `times`, what CPU it used itself. */
export async function wrk(
  url: string,
  connections: number,
  seconds: number,
  close = false,
): Promise<{ rps: number; cpu: number; errors: string }> {
  const header = close ? `-H 'Connection: close'` : '';
  const script = `wrk -t1 -c${connections} -d${seconds}s ${header} ${url}; times`;
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d));
    child.stderr.on('data', (d: Buffer) => (text += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(text);
    });
    child.once('error', reject);
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  // `times` prints the shell's user/system, then its children's: "0m1.234s 0m0.567s".
  const lines = [...out.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)];
  const children = lines.at(-1);
  const cpu = children
    ? (Number(children[1]) * 60 + Number(children[2]) + Number(children[3]) * 60 + Number(children[4])) /
      seconds
    : Number.NaN;
  const errors = /Socket errors:[^\n]*|Non-2xx[^\n]*/g.exec(out)?.[0] ?? '';
  return { rps, cpu, errors };
}

/**
 * `connections` WebSockets to `url`, each sending a `bytes` message and waiting for its echo, for
 * `seconds`: frames through the proxy per second (each round trip counts 2) and the client's own CPU.
 */
export async function webSocketLoad(
  url: string,
  options: { connections: number; seconds: number; bytes: number },
): Promise<{ perSecond: number; cpu: number }> {
  const load = startNodeScript('ws load', httpProxyBench, [
    '--role',
    'ws-load',
    '--url',
    url,
    '--connections',
    String(options.connections),
    '--seconds',
    String(options.seconds),
    '--bytes',
    String(options.bytes),
  ]);
  const m = await load.waitForOutput(/result (\{.*\})/, (options.seconds + 60) * 1000);
  await load.stop();
  return JSON.parse(m[1]!) as { perSecond: number; cpu: number };
}
