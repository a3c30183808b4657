import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ManagedProcess } from './managed-process.ts';

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
  /**
   * A socket (UDP) or connection (TCP) per call (`-t un` / `-t tn`) instead of one for all: calls then
   * come from many ports, which the kernel spreads over the sockets sharing Ebb's port (SPEC §13).
   */
  socketPerCall?: boolean;
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
  readonly process: ManagedProcess;
  readonly statsFile: string;
  readonly errorFile: string;

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
      `${options.transport === 'udp' ? 'u' : 't'}${options.socketPerCall ? 'n' : '1'}`,
      // SIPp refuses -t un/tn while its socket limit (50,000) exceeds the file limit.
      ...(options.socketPerCall ? ['-max_socket', '1000'] : []),
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
    this.process = new ManagedProcess('sipp', 'sipp', args, { cwd: options.dir, maxOutput: 32_768 });
  }

  get child(): ManagedProcess['child'] {
    return this.process.child;
  }

  get output(): string {
    return this.process.output;
  }

  get running(): boolean {
    return this.process.running;
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
    let code: number;
    try {
      code = (await this.process.waitForExit(timeoutMs)) ?? -1;
    } catch {
      await this.stop();
      code = -2;
    }
    return { code, ...this.stats(), output: this.output };
  }

  /** SIGTERM by PID (SIGKILL after 3 s); resolves when it is gone. */
  stop(): Promise<void> {
    return this.process.stop('SIGTERM', 3000);
  }
}
