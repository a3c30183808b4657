/**
 * A chain of `ebb up` processes for one pool config, each replacing the one before (SPEC §13,
 * docs/handoff.md) exactly as an operator does it: the same command started again on the machine. Every
 * process is the harness's `EbbServer`, ended by its PID at cleanup.
 */
import { EbbServer } from '../../test/harness/ebb-process.ts';
import { benchProcessOptions, track } from './processes.ts';

/** What a replaced process says when it exits (src/cli/server-commands.ts). */
const handedOver = /handed over to pid (\d+): (\d+) session\(s\) ended by themselves, (\d+) forced; exiting/;

export interface ReplacedProcess {
  pid: number;
  /** From its `handed over` line; null while it has not said it (still serving, or it died). */
  ended: number | null;
  forced: number | null;
  exitCode: number | null;
}

export class EbbChain {
  readonly #config: string;
  readonly #old: EbbServer[] = [];
  #current: EbbServer;

  private constructor(config: string, first: EbbServer) {
    this.#config = config;
    this.#current = first;
  }

  static async start(config: string): Promise<EbbChain> {
    return new EbbChain(config, await EbbChain.#spawn(config, 0));
  }

  static async #spawn(config: string, n: number): Promise<EbbServer> {
    const proc = track(new EbbServer(['up', config], { ...benchProcessOptions(), name: `ebb up #${n}` }));
    await proc.waitForOutput(/is up/, 60_000);
    return proc;
  }

  get current(): EbbServer {
    return this.#current;
  }

  /**
   * Starts the next process; resolves with the ms from its start until the running one said it handed
   * over (`pid N took over`: it no longer accepts and serves only what it has).
   */
  async handOff(): Promise<number> {
    const started = performance.now();
    const previous = this.#current;
    const next = await EbbChain.#spawn(this.#config, this.#old.length + 1);
    await previous.waitForOutput(new RegExp(`pid ${next.pid} took over`), 60_000);
    const ms = performance.now() - started;
    this.#old.push(previous);
    this.#current = next;
    return ms;
  }

  /** Processes of the chain still running: the current one and the replaced ones still serving. */
  alive(): number {
    return [this.#current, ...this.#old].filter((p) => p.running).length;
  }

  /** Waits (bounded) until every replaced process has exited, and reads what each said. */
  async replaced(timeoutMs: number): Promise<ReplacedProcess[]> {
    const deadline = performance.now() + timeoutMs;
    const out: ReplacedProcess[] = [];
    for (const p of this.#old) {
      await p.waitForExit(Math.max(1, deadline - performance.now())).catch(() => null);
      const m = handedOver.exec(p.output);
      out.push({
        pid: p.pid,
        ended: m ? Number(m[2]) : null,
        forced: m ? Number(m[3]) : null,
        exitCode: p.running ? null : p.child.exitCode,
      });
    }
    return out;
  }

  /** Warnings and errors every process of the chain logged (JSON lines on stderr: level 40 and up). */
  warnings(): string[] {
    return [this.#current, ...this.#old].flatMap((p) =>
      p.output
        .split('\n')
        .filter((l) => /"level":(4|5|6)0\b/.test(l))
        .map((l) => `pid ${p.pid}: ${l.slice(0, 300)}`),
    );
  }

  async stop(): Promise<void> {
    for (const p of [this.#current, ...this.#old].reverse()) await p.stop();
  }
}
