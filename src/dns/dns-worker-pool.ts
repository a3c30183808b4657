import { Worker } from 'node:worker_threads';
import { EbbError, fromThreadError, type PoolView } from '../core/index.ts';
import {
  DnsServer,
  zeroDnsStats,
  type DnsLogger,
  type DnsServerOptions,
  type DnsServerStats,
} from './dns-server.ts';
import type { DnsWorkerData, FromDnsWorker, ToDnsWorker } from './dns-worker-messages.ts';
import { viewFingerprint } from './zone-serial.ts';

export interface DnsWorkerPoolOptions extends DnsServerOptions {
  /** Worker threads, each with its own sockets on the shared port (SO_REUSEPORT); at least 2. */
  workers: number;
  /**
   * Subscribes to changes of the view (returns the unsubscribe): each change whose answers differ is
   * posted to every worker at once (a message between threads: well under a millisecond, far inside the
   * pool's DNS TTL). Without it, the view is looked at every 50 ms.
   */
  onViewChange?: (listener: () => void) => () => void;
}

/** A worker that does not say it closed within this long is terminated. */
const CLOSE_TIMEOUT_MS = 5000;
const POLL_MS = 50;

// The worker's own file, with the extension this module has (`.ts` from source, `.js` when compiled).
const workerFile = new URL(
  `./dns-worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`,
  import.meta.url,
);

interface Thread {
  worker: Worker;
  stats: DnsServerStats | null;
  /** The last view it said it answers from. */
  viewSeq: number;
  exited: boolean;
  closed: Promise<void>;
}

/**
 * The pool DNS server on several threads (issue 12, SPEC §13: `dns: { workers: N }`): N `DnsServer`s
 * in worker threads share one port with SO_REUSEPORT, so the kernel spreads queries over them. This
 * thread keeps the one view: it posts each change that alters answers to every worker (a structured
 * clone), so all of them answer the same. `stats()` sums the counters each worker last reported (once a
 * second, and at close). The same surface as `DnsServer` for the runner.
 */
export class DnsWorkerPool {
  readonly #options: DnsWorkerPoolOptions;
  readonly #logger: DnsLogger | undefined;
  readonly #threads: Thread[] = [];
  #port = 0;
  #fingerprint = '';
  #viewSeq = 0;
  #viewWaiters: Array<() => void> = [];
  #unsubscribe: (() => void) | null = null;
  #starting: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: DnsWorkerPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 2)
      throw new EbbError(
        'EBB_DNS_WORKERS',
        `dns: a worker pool needs 2 or more workers, not ${options.workers}`,
      );
    this.#options = options;
    this.#logger = options.logger;
  }

  get port(): number {
    return this.#port;
  }

  address(): { host: string; port: number } {
    return { host: this.#options.listen.host, port: this.#port };
  }

  /** Starts the first worker (it picks the port when asked for 0), then the others on that port. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    try {
      const view = this.#options.view();
      this.#fingerprint = viewFingerprint(view);
      this.#port = await this.#spawn(this.#options.listen.port, view);
      const rest = Array.from({ length: this.#options.workers - 1 }, () => this.#spawn(this.#port, view));
      await Promise.all(rest);
      this.#watchView();
      this.#logger?.info(
        { host: this.#options.listen.host, port: this.#port, workers: this.#threads.length },
        'dns: listening on udp and tcp',
      );
    } catch (err) {
      await this.#shutdown();
      throw err;
    }
  }

  /** Resolves once every worker answers from the latest view posted (for tests and hand-offs). */
  viewsApplied(): Promise<void> {
    if (this.#applied()) return Promise.resolve();
    return new Promise((resolve) => this.#viewWaiters.push(resolve));
  }

  #applied(): boolean {
    return this.#threads.every((t) => t.exited || t.viewSeq >= this.#viewSeq);
  }

  #viewed(): void {
    if (!this.#applied()) return;
    for (const resolve of this.#viewWaiters.splice(0)) resolve();
  }

  /** Each worker's counters as last reported. */
  workerStats(): Array<DnsServerStats | null> {
    return this.#threads.map((t) => t.stats);
  }

  /** Closes every worker's sockets; the same promise however often it is called. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#starting?.catch(() => undefined);
      await this.#shutdown();
    })();
    return this.#closing;
  }

  /** Tells every worker to close and waits until each has exited (idempotent). */
  async #shutdown(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    for (const t of this.#threads) this.#post(t, { type: 'close' });
    await Promise.all(this.#threads.map((t) => t.closed));
  }

  stats(): DnsServerStats {
    const reported = this.#threads.map((t) => t.stats).filter((s): s is DnsServerStats => s !== null);
    return sumStats(reported);
  }

  #watchView(): void {
    const check = () => {
      const view = this.#options.view();
      const fingerprint = viewFingerprint(view);
      if (fingerprint === this.#fingerprint) return;
      this.#fingerprint = fingerprint;
      const seq = ++this.#viewSeq;
      for (const t of this.#threads) this.#post(t, { type: 'view', view, seq });
    };
    if (this.#options.onViewChange) {
      this.#unsubscribe = this.#options.onViewChange(check);
    } else {
      const timer = setInterval(check, POLL_MS);
      timer.unref();
      this.#unsubscribe = () => clearInterval(timer);
    }
  }

  #post(thread: Thread, message: ToDnsWorker): void {
    try {
      thread.worker.postMessage(message);
    } catch {
      // the worker has exited: its `closed` is settled
    }
  }

  /** One worker on `port`; resolves with the port it listens on, rejects with its bind error. */
  #spawn(port: number, view: PoolView): Promise<number> {
    const o = this.#options;
    const data: DnsWorkerData = {
      listen: { host: o.listen.host, port },
      view,
      ...(o.maxUdpPayload !== undefined ? { maxUdpPayload: o.maxUdpPayload } : {}),
      ...(o.udpReceiveBufferSize !== undefined ? { udpReceiveBufferSize: o.udpReceiveBufferSize } : {}),
      ...(o.maxTcpConnections !== undefined ? { maxTcpConnections: o.maxTcpConnections } : {}),
      ...(o.tcpIdleTimeoutMs !== undefined ? { tcpIdleTimeoutMs: o.tcpIdleTimeoutMs } : {}),
      ...(o.maxTcpPendingBytes !== undefined ? { maxTcpPendingBytes: o.maxTcpPendingBytes } : {}),
      ...(o.nsAddresses !== undefined ? { nsAddresses: o.nsAddresses } : {}),
    };
    const worker = new Worker(workerFile, { workerData: data });
    return new Promise<number>((resolve, reject) => {
      let exited!: () => void;
      const thread: Thread = {
        worker,
        stats: null,
        viewSeq: this.#viewSeq,
        exited: false,
        closed: new Promise<void>((r) => (exited = r)),
      };
      this.#threads.push(thread);
      const timeout = () => setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT_MS).unref();
      worker.on('message', (message: FromDnsWorker) => {
        switch (message.type) {
          case 'listening':
            return resolve(message.port);
          case 'failed':
            return reject(fromThreadError(message.error));
          case 'stats':
            thread.stats = message.stats;
            return;
          case 'viewed':
            thread.viewSeq = message.seq;
            this.#viewed();
            return;
          case 'closed':
            thread.stats = message.stats;
            timeout();
            return;
          case 'log':
            this.#logger?.[message.level](message.obj, message.msg);
            return;
        }
      });
      worker.once('error', (err) => {
        this.#logger?.warn({ err }, 'dns: a worker thread failed');
        reject(new EbbError('EBB_DNS_WORKER', `dns: a worker thread failed: ${err.message}`, { cause: err }));
      });
      worker.once('exit', () => {
        thread.exited = true;
        exited();
        this.#viewed();
        reject(new EbbError('EBB_DNS_WORKER', 'dns: a worker thread exited before it listened'));
      });
    });
  }
}

/** Counters of several servers as one: sums, and the per-RCODE sums. */
export function sumStats(all: readonly DnsServerStats[]): DnsServerStats {
  const total = zeroDnsStats();
  const sums = total as unknown as Record<string, number>;
  for (const stats of all) {
    for (const [key, value] of Object.entries(stats)) {
      if (typeof value === 'number') sums[key] = (sums[key] ?? 0) + value;
    }
    for (const [name, n] of Object.entries(stats.rcodes))
      total.rcodes[name as keyof DnsServerStats['rcodes']] += n;
  }
  return total;
}

/** What serves the pool zone: one server on this thread, or a pool of worker threads. */
export type PoolDnsServer = Pick<DnsServer, 'start' | 'close' | 'stats' | 'address' | 'port'>;

/** `workers` ≤ 1: a `DnsServer` on this thread (no thread hop, the default); else a `DnsWorkerPool`. */
export function createDnsServer(
  options: DnsServerOptions & Partial<Pick<DnsWorkerPoolOptions, 'workers' | 'onViewChange'>>,
): PoolDnsServer {
  const { workers = 1, onViewChange, ...rest } = options;
  if (workers <= 1) return new DnsServer(rest);
  return new DnsWorkerPool({ ...rest, workers, ...(onViewChange ? { onViewChange } : {}) });
}
