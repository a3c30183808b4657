import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { CachedAnswers, PoolResolver, runLoad, tcpSession, type LoadStats } from '../../src/client/index.ts';
import { nodeBin } from '../harness/managed-process.ts';
import type { ChaosPool } from './chaos-pool.ts';

/**
 * Samples every `everyMs` whether any member takes a new connection; a sample where none does is a
 * "moment with no member accepting" (SPEC §5: the capacity guard keeps `minAccepting` accepting).
 */
export class AvailabilityMonitor {
  moments = 0;
  samples = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(pool: ChaosPool, everyMs = 100) {
    this.loop = (async () => {
      while (!this.stopped) {
        const accepting = await pool.accepting(1000);
        this.samples++;
        if (accepting.length === 0) this.moments++;
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  async stop(): Promise<{ moments: number; samples: number }> {
    this.stopped = true;
    await this.loop;
    return { moments: this.moments, samples: this.samples };
  }
}

/**
 * New sessions through the client connector, as `ebb load` makes them: SRV answers from both `ebb dns`
 * kept for the pool's TTL, an echo on open and before close, held `holdMs`.
 */
export function startLoad(
  pool: ChaosPool,
  options: { ratePerSecond: number; durationMs: number; holdMs: number },
): Promise<LoadStats> {
  const resolver = new PoolResolver({ servers: pool.dnsServers, timeoutMs: 1000 });
  const answers = new CachedAnswers(
    () => resolver.resolveService(pool.fqdn, 'echo', 'tcp'),
    pool.dnsTtlS * 1000,
  );
  return runLoad({ endpoints: (o) => answers.next(o), session: tcpSession(true), ...options });
}

/** Bounded busy loops, one process each: CPU starvation that ends by itself after `ms`. */
export function busyLoops(count: number, ms: number): { done: Promise<void>; stop: () => void } {
  const children: ChildProcess[] = Array.from({ length: count }, () =>
    spawn(nodeBin, ['-e', `const end = Date.now() + ${ms}; while (Date.now() < end) {}`], {
      stdio: 'ignore',
    }),
  );
  const done = Promise.all(
    children.map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r())))),
  ).then(() => {});
  return {
    done,
    stop: () => {
      for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
    },
  };
}

/** A small tmpfs at `dir` (root only); false when it cannot be mounted here. */
export function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** `dir` seen again at `at`, read-only (a bind mount: the original stays writable for its open files). */
export function bindReadOnly(dir: string, at: string): void {
  mkdirSync(at, { recursive: true });
  execFileSync('mount', ['--bind', dir, at], { stdio: 'pipe' });
  execFileSync('mount', ['-o', 'remount,bind,ro', at], { stdio: 'pipe' });
}

export function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
}

/** `count` UDP datagrams of garbage and of broken SIP to `host:port`, in bursts. */
export async function udpFlood(
  host: string,
  port: number,
  count: number,
  kind: 'sip' | 'dns',
): Promise<void> {
  const socket = createSocket('udp4');
  socket.on('error', () => {});
  const broken = (i: number): Buffer => {
    if (i % 3 === 0) return randomBytes(1 + (i % 1400));
    if (kind === 'dns') {
      // A header claiming many questions, then a truncated name.
      const b = randomBytes(40);
      b.writeUInt16BE(0xffff, 4);
      return b;
    }
    const variants = [
      `INVITE sip:x@${host} SIP/2.0\r\nVia: SIP/2.0/UDP ;;;\r\nContent-Length: 99999\r\n\r\n`,
      `OPTIONS sip:${'a'.repeat(5000)} SIP/2.0\r\n\r\n`,
      `SIP/2.0 200 OK\r\nCall-ID: ${i}\r\nCSeq: x INVITE\r\n\r\n`,
      `BYE sip:x SIP/9.9\r\n${'X: y\r\n'.repeat(300)}\r\n`,
    ];
    return Buffer.from(variants[i % variants.length]!);
  };
  for (let i = 0; i < count; i++) {
    socket.send(broken(i), port, host);
    if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 50));
  socket.close();
}

/**
 * Slowloris: `count` connections that send a request head a few bytes at a time and never finish it.
 * Returns a stop function that closes them all.
 */
export function slowloris(host: string, port: number, count: number): () => void {
  const sockets: Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect(port, host);
    socket.on('error', () => {});
    socket.write(`GET /v1/pool HTTP/1.1\r\nHost: ${host}:${port}\r\n`);
    let n = 0;
    timers.push(setInterval(() => socket.write(`X-Slow-${n++}: a\r\n`), 500));
    sockets.push(socket);
  }
  return () => {
    for (const t of timers) clearInterval(t);
    for (const s of sockets) s.destroy();
  };
}
