/**
 * Debian's HAProxy in master-worker mode (`-W`, master CLI on `-S`), reloaded the way operators hot-reload
 * it: SIGUSR2 to the master, which re-executes itself, forks a new worker that takes the listening sockets
 * over, and soft-stops the old worker, which serves its connections until they end (`hard-stop-after` is
 * unset, so it waits as long as they last). The config is the harness's (TCP mode, `nbthread N`). The
 * master is ended by its PID; so is every worker it forked that is still there at cleanup.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haproxyConfig } from '../../test/harness/haproxy.ts';
import type { ManagedProcess } from '../../test/harness/managed-process.ts';
import { freePort } from '../../test/harness/ports.ts';
import { onCleanup, startProcess } from './processes.ts';
import type { Endpoint } from './tcp-peers.ts';

/** `[NOTICE] (pid) : Loading success.`: the master's word that a (new) worker is up. */
const loaded = /Loading success\./g;
const forked = /New worker \((\d+)\) forked/g;
const formerExited = /Former worker \((\d+)\) exited with code (\d+)/g;

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

export class ReloadableHaproxy {
  readonly master: ManagedProcess;
  readonly host = '127.0.0.1';
  readonly port: number;

  readonly #cfg: string;

  private constructor(master: ManagedProcess, port: number, cfg: string) {
    this.master = master;
    this.port = port;
    this.#cfg = cfg;
  }

  static async start(
    dir: string,
    upstream: Endpoint,
    options: { maxconn: number; threads: number },
  ): Promise<ReloadableHaproxy> {
    const port = await freePort();
    const cfg = join(dir, `haproxy-mw-${port}.cfg`);
    const frontend = { host: '127.0.0.1', port };
    const servers = [{ name: 'upstream', address: upstream.host, port: upstream.port }];
    const stats = join(dir, `haproxy-mw-${port}.sock`);
    writeFileSync(
      cfg,
      haproxyConfig(stats, frontend, servers, {
        maxconn: options.maxconn,
        connectTimeout: '5s',
        idleTimeout: '10m',
        threads: options.threads,
      }),
    );
    const master = startProcess(
      'haproxy master',
      'haproxy',
      ['-W', '-db', '-S', join(dir, `haproxy-mw-${port}.master`), '-f', cfg],
      { maxOutput: 1 << 20 },
    );
    const h = new ReloadableHaproxy(master, port, cfg);
    // Workers outlive a master that is killed: end any still there, by the PIDs the master announced.
    onCleanup(() => h.#endWorkers());
    await master.waitForOutput(/Loading success\./, 10_000);
    return h;
  }

  /** Reloads (SIGUSR2 to the master); resolves with the ms until the master said the new worker is up. */
  async reload(timeoutMs = 30_000): Promise<number> {
    const before = count(this.master.output, loaded);
    const started = performance.now();
    this.master.signal('SIGUSR2');
    const deadline = started + timeoutMs;
    while (count(this.master.output, loaded) <= before) {
      if (/Loading failure/.test(this.master.output.slice(-2000)))
        throw new Error(`haproxy reload failed:\n${this.master.output.slice(-2000)}`);
      if (performance.now() > deadline) throw new Error(`haproxy: no reload within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return performance.now() - started;
  }

  /** Workers forked so far minus the one serving: how many old workers there have been. */
  get formerWorkers(): number {
    return Math.max(0, count(this.master.output, forked) - 1);
  }

  /** Old workers that have exited, and how many of them with a code other than 0. */
  exitedFormer(): { exited: number; nonZero: number } {
    const exits = [...this.master.output.matchAll(formerExited)];
    return { exited: exits.length, nonZero: exits.filter((m) => m[2] !== '0').length };
  }

  async stop(): Promise<void> {
    await this.master.stop('SIGTERM', 5000);
    this.#endWorkers();
  }

  /** Only a PID that still runs this config is ours (a PID freed long ago may be someone else's now). */
  #endWorkers(): void {
    for (const m of this.master.output.matchAll(forked)) {
      const pid = Number(m[1]);
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.#cfg)) continue;
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }
}
