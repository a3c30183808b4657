import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sendRaw, request } from './sip-probe.ts';

export const dispatcherTemplate = resolve(import.meta.dirname, '../kamailio/dispatcher.cfg');

/**
 * A real Kamailio (Debian's `kamailio`) running test/kamailio/dispatcher.cfg in the foreground in front
 * of Ebb front ends; ended by its PID (its children die with it: -DD keeps them in its process group and
 * it stops them on SIGTERM).
 */
export class Kamailio {
  readonly child: ChildProcess;
  output = '';

  private constructor(child: ChildProcess) {
    this.child = child;
    const keep = (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > 65_536) this.output = this.output.slice(-65_536);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
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
    const child = spawn(
      'kamailio',
      [
        ...['-f', cfg, '-DD', '-E', '-m', String(options.shmMb ?? 64), '-M', '16'],
        ...['-Y', dir, '-P', join(dir, 'kamailio.pid'), '-w', dir],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const k = new Kamailio(child);
    // Ready once it answers: an OPTIONS to it is dispatched to a front end, which answers it.
    const deadline = Date.now() + 10_000;
    const target = { host: listen.address, port: listen.port, transport: 'udp' as const };
    for (;;) {
      if (child.exitCode !== null) throw new Error(`kamailio exited (${child.exitCode}):\n${k.output}`);
      if (Date.now() > deadline) throw new Error(`kamailio did not start:\n${k.output}`);
      const probe = await sendRaw(target, request('OPTIONS', target), { waitMs: 300 });
      if (probe.responses.length > 0) return k;
    }
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const pid = this.child.pid!;
    return new Promise((done) => {
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      process.kill(pid, 'SIGTERM');
    });
  }
}
