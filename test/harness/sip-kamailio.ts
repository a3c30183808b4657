import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ManagedProcess } from './managed-process.ts';
import { sendRaw, request } from './sip-probe.ts';

export const dispatcherTemplate = resolve(import.meta.dirname, '../kamailio/dispatcher.cfg');

/**
 * A real Kamailio (Debian's `kamailio`) running test/kamailio/dispatcher.cfg in the foreground in front
 * of Ebb front ends; ended by its PID (its children die with it: -DD keeps them in its process group and
 * it stops them on SIGTERM).
 */
export class Kamailio {
  readonly process: ManagedProcess;

  private constructor(proc: ManagedProcess) {
    this.process = proc;
  }

  get child(): ManagedProcess['child'] {
    return this.process.child;
  }

  get output(): string {
    return this.process.output;
  }

  /** Writes the config and the dispatcher list into `dir`, starts Kamailio, waits until it listens. */
  static async start(
    dir: string,
    listen: { address: string; port: number },
    destinations: Array<{ host: string; port: number; transport?: 'udp' | 'tcp' }>,
    options: { children?: number; shmMb?: number } = {},
  ): Promise<Kamailio> {
    const list = join(dir, 'dispatcher.list');
    writeFileSync(
      list,
      destinations
        .map((d) => `1 sip:${d.host}:${d.port}${d.transport === 'tcp' ? ';transport=tcp' : ''} 0 0\n`)
        .join(''),
    );
    const cfg = join(dir, 'kamailio.cfg');
    writeFileSync(
      cfg,
      readFileSync(dispatcherTemplate, 'utf8')
        .replaceAll('{{ADDRESS}}', listen.address)
        .replaceAll('{{PORT}}', String(listen.port))
        .replaceAll('{{LIST}}', list)
        .replace(/^children=\d+$/m, `children=${options.children ?? 2}`),
    );
    const k = new Kamailio(
      new ManagedProcess(
        'kamailio',
        'kamailio',
        [
          ...['-f', cfg, '-DD', '-E', '-m', String(options.shmMb ?? 64), '-M', '16'],
          ...['-Y', dir, '-P', join(dir, 'kamailio.pid'), '-w', dir],
        ],
        { maxOutput: 65_536 },
      ),
    );
    // Ready once it answers: an OPTIONS to it is dispatched to a front end, which answers it.
    const deadline = Date.now() + 10_000;
    const target = { host: listen.address, port: listen.port, transport: 'udp' as const };
    for (;;) {
      if (!k.process.running) throw new Error(`kamailio exited (${k.child.exitCode}):\n${k.output}`);
      if (Date.now() > deadline) {
        await k.stop();
        throw new Error(`kamailio did not start:\n${k.output}`);
      }
      const probe = await sendRaw(target, request('OPTIONS', target), { waitMs: 300 });
      if (probe.responses.length > 0) return k;
    }
  }

  /** SIGTERM by PID (SIGKILL after 5 s); resolves when it is gone. */
  stop(): Promise<void> {
    return this.process.stop('SIGTERM', 5000);
  }
}
