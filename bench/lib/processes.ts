/**
 * What the benchmarks add to the test harness's process runner (test/harness/managed-process.ts): every
 * process a benchmark starts is ended at cleanup by its own PID (never by name) and every temp dir is
 * removed, also on Ctrl-C; children may hold many sockets; /proc readings of RSS and CPU.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManagedProcess,
  nodeBin,
  nodeFlags,
  type ProcessOptions,
} from '../../test/harness/managed-process.ts';

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

/** Ends `thing` (a process, a cluster…) at cleanup; returns it. */
export function track<T extends { stop(): Promise<void> }>(thing: T): T {
  onCleanup(() => thing.stop());
  return thing;
}

/** A scratch directory, removed at cleanup. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
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

/** What every benchmark child gets: room for many sockets, the last 64 KB of its output kept. */
export function benchProcessOptions(options: ProcessOptions = {}): ProcessOptions {
  return { fdLimit: childFdLimit(), maxOutput: 65_536, ...options };
}

/** Starts a process for a benchmark (see `benchProcessOptions`), ended at cleanup. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: ProcessOptions = {},
): ManagedProcess {
  return track(new ManagedProcess(name, command, args, benchProcessOptions(options)));
}

/** Starts a runnable TypeScript file of the benchmarks in its own Node process. */
export function startNodeScript(
  name: string,
  script: string,
  args: string[],
  options: ProcessOptions & { nodeArgs?: string[] } = {},
): ManagedProcess {
  const { nodeArgs = [], ...rest } = options;
  return startProcess(name, nodeBin, [...nodeFlags, ...nodeArgs, script, ...args], rest);
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
