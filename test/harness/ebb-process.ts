import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const nodeBin = join(root, 'node_modules/.bin/node');
const ebbBin = join(root, 'bin/ebb.js');

export interface EbbRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A scratch directory holding a config and the pool's state; removed by `cleanup()`. */
export class Workspace {
  readonly dir: string;
  constructor(prefix = 'ebb-test-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }
  file(name: string, content: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs one `ebb` command to completion. */
export function runEbb(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<EbbRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(nodeBin, ['--disable-warning=ExperimentalWarning', ebbBin, ...args], {
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
      reject(new Error(`ebb ${args.join(' ')} did not finish in time\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A long-running `ebb up` (or `ebb agent`, …) started by a test, ended by its PID. */
export class EbbServer {
  readonly child: ChildProcess;
  output = '';

  private constructor(child: ChildProcess) {
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d));
    child.stderr!.on('data', (d: Buffer) => (this.output += d));
  }

  /** Starts `ebb <args>` and waits until its output matches `ready`. */
  static async start(
    args: string[],
    ready: RegExp,
    options: { cwd: string; timeoutMs?: number; env?: Record<string, string> },
  ): Promise<EbbServer> {
    const child = spawn(nodeBin, ['--disable-warning=ExperimentalWarning', ebbBin, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new EbbServer(child);
    await server.waitForOutput(ready, options.timeoutMs ?? 15_000);
    return server;
  }

  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        if (pattern.test(this.output)) {
          cleanup();
          resolvePromise();
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`ebb exited (${code}) before ${pattern}:\n${this.output}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const cleanup = () => {
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

  /** SIGTERM (a clean stop) or SIGKILL (a crash); resolves when the process is gone. */
  stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolvePromise) => {
      this.child.once('exit', () => resolvePromise());
      this.child.kill(signal);
    });
  }
}
