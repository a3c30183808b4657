/**
 * Child processes, ports, temp dirs and /proc readings for the benchmarks. Every process a benchmark
 * starts is ended by its own PID (never by name), and every temp dir is removed, also on Ctrl-C.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const root = resolve(import.meta.dirname, '../..');
/** The pinned Node 24 the project runs on (the `node` npm package). */
export const nodeBin = join(root, 'node_modules/.bin/node');
export const nodeFlags = ['--disable-warning=ExperimentalWarning'];
/** How many file descriptors children ask for; capped by the hard limit when that is lower. */
export const wantedFdLimit = 65_536;

const cleanups = new Set<() => Promise<void> | void>();
let signalled = false;

/** Runs `fn` when the benchmark ends, normally or by SIGINT/SIGTERM; returns an unregister function. */
export function onCleanup(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export async function runCleanups(): Promise<void> {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      await fn();
    } catch {
      // Best effort: the next cleanup still runs.
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (signalled) return;
    signalled = true;
    process.stderr.write(`\nbench: ${signal}: stopping the processes started here\n`);
    void runCleanups().then(() => process.exit(130));
  });
}

/** A scratch directory, removed at cleanup. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** The hard limit on open files, which children cannot go beyond (raising it needs CAP_SYS_RESOURCE). */
export function hardFdLimit(): number {
  const out = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out) || 1024;
}

/** The fd limit children get: `wantedFdLimit`, or the hard limit when that is lower. */
export function childFdLimit(): number {
  return Math.min(wantedFdLimit, hardFdLimit());
}

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Resident set size of a process in KiB (VmRSS of /proc/<pid>/status). */
export function rssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat, fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** User and system (kernel) CPU seconds a process has used, apart. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return { user: Number(fields[11]) / clockTicks, system: Number(fields[12]) / clockTicks };
}

/** One line about how busy the machine is, for the header of a benchmark's output. */
export function machineNote(): string {
  const [one, five] = readFileSync('/proc/loadavg', 'utf8').split(' ');
  return `${availableParallelism()} cores, load average ${one} (1 min) ${five} (5 min)`;
}

/** A port that is free on `host` right now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves once a TCP connect to host:port succeeds; bounded by `timeoutMs`. */
export async function waitForTcp(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((done) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
}

/**
 * A process started by a benchmark, with its output kept (the last 64 KB by default) for errors and
 * readiness checks. Started through `bash -c 'ulimit -n …; exec …'` so it can hold many sockets; `exec`
 * keeps the PID the program's own.
 */
export class BenchProcess {
  readonly child: ChildProcess;
  readonly name: string;
  output = '';
  /** Standard output alone (the last `maxOutput` bytes too), for programs that print JSON there. */
  stdout = '';
  private readonly exited: Promise<void>;
  /** After exit and after its stdout and stderr have been read to the end. */
  private readonly closed: Promise<void>;

  constructor(
    name: string,
    cmd: string,
    args: string[],
    options: { cwd?: string; stdin?: boolean; maxOutput?: number } = {},
  ) {
    this.name = name;
    const maxOutput = options.maxOutput ?? 65_536;
    const limit = childFdLimit();
    const script = `ulimit -n ${Number.isFinite(limit) ? limit : wantedFdLimit} 2>/dev/null; exec "$@"`;
    this.child = spawn('bash', ['-c', script, 'bash', cmd, ...args], {
      cwd: options.cwd ?? root,
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > maxOutput) this.output = this.output.slice(-maxOutput);
    };
    // A write to a process that has just exited must not crash the benchmark.
    this.child.stdin?.on('error', () => {});
    this.child.stdout!.on('data', keep);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      if (this.stdout.length > maxOutput) this.stdout = this.stdout.slice(-maxOutput);
    });
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((done) => this.child.once('exit', () => done()));
    this.closed = new Promise((done) => this.child.once('close', () => done()));
    onCleanup(() => this.stop());
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no PID (did it start?)`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until the output matches `pattern`; rejects if the process exits or time runs out. */
  waitForOutput(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
    return new Promise((resolveMatch, reject) => {
      const check = () => {
        const match = pattern.exec(this.output);
        if (match) {
          done();
          resolveMatch(match);
        }
      };
      const onExit = () => {
        done();
        reject(
          new Error(
            `${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${pattern}:\n${this.output}`,
          ),
        );
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.child.stdout!.off('data', check);
        this.child.stderr!.off('data', check);
        this.child.off('exit', onExit);
      };
      this.child.stdout!.on('data', check);
      this.child.stderr!.on('data', check);
      this.child.once('exit', onExit);
      check();
    });
  }

  /** Writes one line to the process's stdin (started with `stdin: true`). */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Resolves with the exit code (null if ended by a signal) once the process has exited and its output is read; bounded. */
  async waitForExit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} still running after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.child.exitCode;
  }

  /** SIGTERM by PID, SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    const pid = this.child.pid;
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.running) process.kill(pid, 'SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts a runnable TypeScript file of the benchmarks in its own Node process. */
export function startNodeScript(
  name: string,
  script: string,
  args: string[],
  options: { stdin?: boolean; nodeArgs?: string[]; maxOutput?: number } = {},
): BenchProcess {
  return new BenchProcess(name, nodeBin, [...nodeFlags, ...(options.nodeArgs ?? []), script, ...args], {
    stdin: options.stdin ?? false,
    ...(options.maxOutput ? { maxOutput: options.maxOutput } : {}),
  });
}
