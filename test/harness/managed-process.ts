/**
 * The one process runner of the tests and the benchmarks: a child process started with its output kept
 * for readiness checks and failure messages, ended only by its own PID (never by name).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../..');
/** The pinned Node 24 the project runs on (the `node` npm package). */
export const nodeBin = join(root, 'node_modules/.bin/node');
export const nodeFlags = ['--disable-warning=ExperimentalWarning'];

export interface ProcessOptions {
  /** Default: the repository root. */
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** A pipe to the child's stdin, for `send()`. */
  stdin?: boolean;
  /** How much of the output to keep, the latest characters (default 1 MiB). */
  maxOutput?: number;
  /**
   * Raise the child's limit on open files to this first (`bash -c 'ulimit -n N; exec …'`; `exec` keeps
   * the PID the program's own). For processes that hold many sockets.
   */
  fdLimit?: number;
}

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Whether `command` is on the PATH. */
export function which(command: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' }).status === 0;
}

/** Runs a command to completion; rejects (after SIGKILL by PID) if it is still running after `timeoutMs`. */
export function runProcess(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in time\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A long-running child process: output kept, readiness by a pattern in it, ended by its PID. */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Standard output and error together, the latest `maxOutput` characters. */
  output = '';
  /** Standard output alone (the latest `maxOutput` characters too), for programs that print JSON there. */
  stdout = '';
  #failed: Error | null = null;
  readonly #exited: Promise<void>;
  /** After exit and after its stdout and stderr have been read to the end. */
  readonly #closed: Promise<void>;

  constructor(name: string, command: string, args: string[], options: ProcessOptions = {}) {
    this.name = name;
    const maxOutput = options.maxOutput ?? 1 << 20;
    const [file, argv] =
      options.fdLimit === undefined
        ? [command, args]
        : ['bash', ['-c', `ulimit -n ${options.fdLimit} 2>/dev/null; exec "$@"`, 'bash', command, ...args]];
    this.child = spawn(file, argv, {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > maxOutput) this.output = this.output.slice(-maxOutput);
    };
    // A write to a process that has just exited must not crash the test.
    this.child.stdin?.on('error', () => {});
    this.child.stdout!.on('data', keep);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      if (this.stdout.length > maxOutput) this.stdout = this.stdout.slice(-maxOutput);
    });
    this.child.stderr!.on('data', keep);
    let failed = () => {};
    const failedToStart = new Promise<void>((done) => (failed = done));
    // A program that cannot be started (ENOENT) emits 'error' and maybe no 'exit'.
    this.child.once('error', (err) => {
      this.#failed = err;
      this.output += `\n${this.name}: ${err.message}\n`;
      failed();
    });
    this.#exited = Promise.race([
      new Promise<void>((done) => this.child.once('exit', () => done())),
      failedToStart,
    ]);
    this.#closed = Promise.race([
      new Promise<void>((done) => this.child.once('close', () => done())),
      failedToStart,
    ]);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no PID (did it start?)`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.#failed === null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until the output matches `pattern`; rejects if the process exits or time runs out. */
  waitForOutput(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
    return new Promise((resolveMatch, reject) => {
      let settled = false;
      const check = () => {
        const match = settled ? null : pattern.exec(this.output);
        if (match) {
          done();
          resolveMatch(match);
        }
      };
      // Output can still arrive after 'exit': decide once stdout and stderr are read to the end.
      const onExit = () =>
        this.#closed.then(() => {
          check();
          if (settled) return;
          done();
          reject(
            new Error(`${this.name} exited (${this.#exitDescription()}) before ${pattern}:\n${this.output}`),
          );
        });
      const timer = setTimeout(() => {
        if (settled) return;
        done();
        reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const done = () => {
        settled = true;
        clearTimeout(timer);
        this.child.stdout!.off('data', check);
        this.child.stderr!.off('data', check);
      };
      this.child.stdout!.on('data', check);
      this.child.stderr!.on('data', check);
      void this.#exited.then(onExit);
      check();
    });
  }

  /** Writes one line to the process's stdin (started with `stdin: true`). */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Sends a signal by PID and returns at once (SIGSTOP/SIGCONT to hold its event loop, …). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.#kill(signal);
  }

  /** Resolves with the exit code (null if ended by a signal) once it has exited and its output is read; bounded. */
  async waitForExit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} still running after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.child.exitCode;
  }

  /**
   * Sends `signal` by PID (SIGTERM: a clean stop; SIGKILL: a crash), then SIGKILL if it is still there
   * after `graceMs`; resolves when the process is gone. Safe to call again.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.#kill(signal);
    // A process held with SIGSTOP handles nothing but SIGKILL until it is continued.
    if (signal !== 'SIGKILL') this.#kill('SIGCONT');
    const timer = setTimeout(() => {
      if (this.running) this.#kill('SIGKILL');
    }, graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** By PID; a process that has just exited (ESRCH) is no error. */
  #kill(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  #exitDescription(): string {
    return this.#failed?.message ?? String(this.child.exitCode ?? this.child.signalCode);
  }
}
