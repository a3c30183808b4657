import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/index.ts';
import {
  ManagedProcess,
  nodeBin,
  root,
  runProcess,
  type ProcessOptions,
  type ProcessResult,
} from './managed-process.ts';
import { poolYaml } from './pool-config.ts';

export const ebbBin = join(root, 'bin/ebb.js');

/**
 * The Node flags `ebb` runs with when installed: those of its `#!/usr/bin/env -S node …` line, so a test
 * or a benchmark that starts `node bin/ebb.js` runs Ebb as an operator's `ebb` does (the V8 young
 * generation's size among them, docs/deploy.md "Installing").
 */
export const ebbNodeFlags = shebangFlags(ebbBin);

function shebangFlags(file: string): string[] {
  const line = readFileSync(file, 'utf8').split('\n', 1)[0]!;
  const flags = /^#!\/usr\/bin\/env -S node((?: --[\w=-]+)*)$/.exec(line);
  if (!flags) throw new Error(`${file}: the first line is not "#!/usr/bin/env -S node --flag …": ${line}`);
  return flags[1]!.trim().split(' ').filter(Boolean);
}

export type EbbRun = ProcessResult;

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
  /** Writes `config` as YAML (see `poolYaml`) and returns the file's path. */
  config(name: string, config: ConfigInput): string {
    return this.file(name, poolYaml(config));
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
  return runProcess(nodeBin, [...ebbNodeFlags, ebbBin, ...args], options);
}

export interface EbbServerOptions extends ProcessOptions {
  /** Node flags before the script, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** For messages; default `ebb <args>`. */
  name?: string;
}

/** A long-running `ebb up` (or `ebb agent`, …) started by a test, ended by its PID. */
export class EbbServer extends ManagedProcess {
  constructor(args: string[], options: EbbServerOptions = {}) {
    const { nodeArgs = [], name = `ebb ${args.join(' ')}`, ...rest } = options;
    super(name, nodeBin, [...ebbNodeFlags, ...nodeArgs, ebbBin, ...args], rest);
  }

  /** Starts `ebb <args>` and waits until its output matches `ready`; ends it if it never does. */
  static async start(
    args: string[],
    ready: RegExp,
    options: EbbServerOptions & { timeoutMs?: number } = {},
  ): Promise<EbbServer> {
    const { timeoutMs = 15_000, ...rest } = options;
    const server = new EbbServer(args, rest);
    try {
      await server.waitForOutput(ready, timeoutMs);
    } catch (err) {
      await server.stop('SIGKILL');
      throw err;
    }
    return server;
  }

  /** SIGTERM (a clean stop, SIGKILL after `graceMs`) or SIGKILL (a crash); resolves when the process is gone. */
  override stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
    return super.stop(signal, graceMs);
  }
}
