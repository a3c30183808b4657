import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const sippScenarios = resolve(import.meta.dirname, '../sipp');

export interface SippOptions {
  /** A file name in test/sipp/. */
  scenario: string;
  /** Scratch directory: SIPp writes its logs and statistics there. */
  dir: string;
  localHost?: string;
  localPort: number;
  /** `host:port` to call (uac); omitted for a uas. */
  remote?: string;
  transport: 'udp' | 'tcp';
  /** Stop after this many calls (-m). */
  calls?: number;
  /** Calls per second (-r). */
  rate?: number;
  /** Hold time of `<pause/>` in ms (-d). */
  holdMs?: number;
  /** Request-URI user (-s). */
  service?: string;
  /** Most calls at once (-l). */
  limit?: number;
  extra?: string[];
}

export interface SippResult {
  /** 0: every call succeeded; 1: some failed; other: SIPp's own failure. */
  code: number;
  successful: number;
  failed: number;
  created: number;
  retransmissions: number;
  output: string;
}

/** One SIPp process (Debian's sip-tester) started by a test and ended by its PID. */
export class Sipp {
  readonly child: ChildProcess;
  readonly statsFile: string;
  readonly errorFile: string;
  output = '';
  readonly #exited: Promise<number>;

  constructor(options: SippOptions) {
    const tag = `${options.scenario.replace(/\.xml$/, '')}-${options.localPort}`;
    this.statsFile = join(options.dir, `${tag}.csv`);
    this.errorFile = join(options.dir, `${tag}-errors.log`);
    const args = [
      '-sf',
      join(sippScenarios, options.scenario),
      '-i',
      options.localHost ?? '127.0.0.1',
      '-p',
      String(options.localPort),
      '-t',
      options.transport === 'udp' ? 'u1' : 't1',
      '-nostdin',
      '-trace_err',
      '-error_file',
      this.errorFile,
      '-trace_stat',
      '-stf',
      this.statsFile,
      '-fd',
      '1',
      ...(options.calls !== undefined ? ['-m', String(options.calls)] : []),
      ...(options.rate !== undefined ? ['-r', String(options.rate)] : []),
      ...(options.holdMs !== undefined ? ['-d', String(options.holdMs)] : []),
      ...(options.service !== undefined ? ['-s', options.service] : []),
      ...(options.limit !== undefined ? ['-l', String(options.limit)] : []),
      ...(options.extra ?? []),
      ...(options.remote ? [options.remote] : []),
    ];
    this.child = spawn('sipp', args, { cwd: options.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > 32_768) this.output = this.output.slice(-32_768);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.#exited = new Promise((done) => this.child.once('exit', (code) => done(code ?? -1)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last statistics line SIPp wrote (every second and at exit). */
  stats(): Omit<SippResult, 'code' | 'output'> {
    const empty = { successful: 0, failed: 0, created: 0, retransmissions: 0 };
    if (!existsSync(this.statsFile)) return empty;
    const lines = readFileSync(this.statsFile, 'utf8').trim().split('\n');
    if (lines.length < 2) return empty;
    const header = lines[0]!.split(';');
    const last = lines[lines.length - 1]!.split(';');
    const get = (name: string) => Number(last[header.indexOf(name)] ?? 0);
    return {
      successful: get('SuccessfulCall(C)'),
      failed: get('FailedCall(C)'),
      created: get('TotalCallCreated'),
      retransmissions: get('Retransmissions(C)'),
    };
  }

  /** The end of SIPp's error log (unexpected messages, failed checks), for assertion messages. */
  errors(maxChars = 4000): string {
    return existsSync(this.errorFile) ? readFileSync(this.errorFile, 'utf8').slice(-maxChars) : '';
  }

  /** Waits for SIPp to exit on its own (its call limit reached); kills it when `timeoutMs` passes. */
  async wait(timeoutMs: number): Promise<SippResult> {
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      this.#exited,
      new Promise<number>((done) => {
        timer = setTimeout(() => {
          void this.stop().then(() => done(-2));
        }, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return { code, ...this.stats(), output: this.output };
  }

  /** SIGTERM by PID (SIGKILL after 3 s); resolves when it is gone. */
  async stop(): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    const pid = this.child.pid;
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => this.running && process.kill(pid, 'SIGKILL'), 3000);
    await this.#exited;
    clearTimeout(timer);
  }
}
