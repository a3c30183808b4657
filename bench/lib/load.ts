/** The parent side of the load tool: starts `load-worker.ts` processes, starts them together, sums. */
import { join } from 'node:path';
import type { ManagedProcess } from '../../test/harness/managed-process.ts';
import { startNodeScript } from './processes.ts';

const workerScript = join(import.meta.dirname, 'load-worker.ts');

export interface ConnResult {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  /** Connections completed per second, all workers together. */
  perSecond: number;
  latencyMs: number[];
  /** CPU the load workers used, in cores (1 = one core busy for the whole run). */
  clientCpu: number;
}

export interface StreamResult {
  /** Payload bytes echoed back per second, all workers together (10^6 bytes = 1 MB). */
  mbPerSecond: number;
  errors: Record<string, number>;
  clientCpu: number;
}

function lastJson(output: string, pattern: RegExp): Record<string, unknown> {
  const lines = output.split('\n').filter((l) => l.startsWith('{') && pattern.test(l));
  if (lines.length === 0) throw new Error(`no result line matching ${pattern} in:\n${output.slice(-2000)}`);
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

async function startWorkers(count: number, args: string[]): Promise<ManagedProcess[]> {
  const workers = Array.from({ length: count }, (_, i) =>
    startNodeScript(`load worker ${i + 1}`, workerScript, args, { stdin: true, maxOutput: 8 * 1024 * 1024 }),
  );
  await Promise.all(workers.map((w) => w.waitForOutput(/^ready$/m, 20_000)));
  return workers;
}

async function runWorkers(
  count: number,
  args: string[],
  timeoutMs: number,
): Promise<Array<Record<string, unknown>>> {
  const workers = await startWorkers(count, args);
  try {
    for (const w of workers) w.send('go');
    await Promise.all(workers.map((w) => w.waitForOutput(/^\{"mode".*\}$/m, timeoutMs)));
    return workers.map((w) => lastJson(w.output, /"mode"/));
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

function clientCpu(results: Array<Record<string, unknown>>): number {
  return results.reduce((a, r) => a + (r.cpuSeconds as number) / (r.elapsed as number), 0);
}

function mergeErrors(results: Array<Record<string, unknown>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results)
    for (const [k, v] of Object.entries((r.errors as Record<string, number>) ?? {}))
      out[k] = (out[k] ?? 0) + v;
  return out;
}

export async function connLoad(o: {
  host: string;
  port: number;
  workers: number;
  seconds: number;
  concurrency: number;
  bytes: number;
}): Promise<ConnResult> {
  const results = await runWorkers(
    o.workers,
    [
      '--mode',
      'conn',
      '--host',
      o.host,
      '--port',
      String(o.port),
      '--seconds',
      String(o.seconds),
      '--concurrency',
      String(o.concurrency),
      '--bytes',
      String(o.bytes),
    ],
    (o.seconds + 30) * 1000,
  );
  const perSecond = results.reduce((a, r) => a + (r.ok as number) / (r.elapsed as number), 0);
  return {
    ok: results.reduce((a, r) => a + (r.ok as number), 0),
    failed: results.reduce((a, r) => a + (r.failed as number), 0),
    errors: mergeErrors(results),
    perSecond,
    latencyMs: results.flatMap((r) => r.latencyMs as number[]),
    clientCpu: clientCpu(results),
  };
}

export async function streamLoad(o: {
  host: string;
  port: number;
  workers: number;
  seconds: number;
  connections: number;
  chunk: number;
  window: number;
}): Promise<StreamResult> {
  const results = await runWorkers(
    o.workers,
    [
      '--mode',
      'stream',
      '--host',
      o.host,
      '--port',
      String(o.port),
      '--seconds',
      String(o.seconds),
      '--connections',
      String(o.connections),
      '--chunk',
      String(o.chunk),
      '--window',
      String(o.window),
    ],
    (o.seconds + 30) * 1000,
  );
  const bytes = results.reduce((a, r) => a + (r.bytes as number) / (r.elapsed as number), 0);
  return { mbPerSecond: bytes / 1e6, errors: mergeErrors(results), clientCpu: clientCpu(results) };
}

/** Idle sessions held open by one worker until `close()`. */
export class HeldSessions {
  readonly held: number;
  readonly failed: number;
  readonly errors: Record<string, number>;
  readonly openSeconds: number;
  private readonly worker: ManagedProcess;
  private closing: Promise<void> | null = null;

  private constructor(worker: ManagedProcess, result: Record<string, unknown>) {
    this.worker = worker;
    this.held = result.held as number;
    this.failed = result.failed as number;
    this.errors = (result.errors as Record<string, number>) ?? {};
    this.openSeconds = result.openSeconds as number;
  }

  static async open(o: {
    host: string;
    port: number;
    sessions: number;
    concurrency: number;
    holdSeconds: number;
    localAddresses?: string[];
  }): Promise<HeldSessions> {
    const [worker] = await startWorkers(1, [
      '--mode',
      'hold',
      '--host',
      o.host,
      '--port',
      String(o.port),
      '--connections',
      String(o.sessions),
      '--concurrency',
      String(o.concurrency),
      '--seconds',
      String(o.holdSeconds),
      ...(o.localAddresses?.length ? ['--local-addresses', o.localAddresses.join(',')] : []),
    ]);
    worker!.send('go');
    await worker!.waitForOutput(/"event":"held"/, 120_000);
    return new HeldSessions(worker!, lastJson(worker!.output, /"event":"held"/));
  }

  /** Closes every session and ends the worker; the same promise however often it is called. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.worker.running) this.worker.send('close');
      await this.worker.waitForOutput(/"event":"closed"/, 60_000).catch(() => {});
      await this.worker.stop();
    })();
    return this.closing;
  }
}
