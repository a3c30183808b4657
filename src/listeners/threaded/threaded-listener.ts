import { Worker } from 'node:worker_threads';
import type { ListenerConfig } from '../../config/index.ts';
import { EbbError, fromThreadError } from '../../core/index.ts';
import { LifecycleListener } from '../lifecycle-listener.ts';
import type { ListenerContext } from '../listener-kinds.ts';
import { ListenerLifecycle, type ListenerDriver } from '../listener-lifecycle.ts';
import { emptyStats, type ListenerStats } from '../listener-stats.ts';
import type { ListenerEvents, ListenerNote } from '../listener.ts';
import type {
  FromListenerWorker,
  ListenerCommand,
  ListenerWorkerData,
  ToListenerWorker,
} from './threaded-messages.ts';

// The worker's own file, with the extension this module has (`.ts` from source, `.js` when compiled).
const workerFile = new URL(
  `./listener-worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`,
  import.meta.url,
);

interface Thread {
  worker: Worker;
  stats: ListenerStats;
  pending: Map<number, { resolve: (value: number) => void; reject: (err: Error) => void }>;
  exited: Promise<void>;
  gone: boolean;
}

/**
 * Which listeners may run on several threads: proxies to a `host:port` without TLS — tcp and http, whose
 * sessions are each self-contained on one connection, and sip over udp or tcp, whose dialogs' messages
 * may reach any thread (the kernel spreads them by address): each thread has a port of its own in its
 * Via and Record-Route, so responses come back to it, and a thread that routes a request inside a dialog
 * it does not track tells the others (`ListenerNote`), so the owner counts it. Builtin upstreams stay on
 * the agent's thread (the demo chat room is one room, the demo callee one callee); TLS (http, sip tls
 * and wss) too, as its files are re-read on SIGHUP, which only the main thread receives; and sip ws, whose
 * WebSocket flows are tied to their connection and gain nothing from it.
 */
export function threadable(config: ListenerConfig): boolean {
  // Kinds added later (kernel, embedded modes) have no proxied data path: never threaded.
  const c = config as { mode?: string; target?: { kind: string }; tls?: unknown; transport?: string };
  if (c.mode !== undefined && c.mode !== 'proxy') return false;
  if (c.target?.kind !== 'address' || c.tls !== undefined) return false;
  if (config.protocol === 'sip') return c.transport === 'udp' || c.transport === 'tcp';
  return config.protocol === 'tcp' || config.protocol === 'http';
}

/**
 * One listener served by N worker threads (SPEC §13, `agent.workers`): each thread runs the listener
 * its config describes, bound to the same address and port with SO_REUSEPORT, so the kernel spreads new
 * connections over them. This object is the listener the service runtime sees: its lifecycle (the same
 * `ListenerLifecycle` as every kind) sends each step to every thread and resolves once all of them have
 * done it — `refuse()` returns only when every thread refuses. Counts: each thread sends its whole
 * `stats()` with every change, and `stats()` here is their sum, plus what threads that have ended counted.
 * Notes (`ListenerNote`): one from a thread goes to every other thread and up to `events.onNote` (for
 * listeners elsewhere); one given to `applyNote` goes to every thread.
 */
export class ThreadedListener extends LifecycleListener {
  readonly description: string;
  protected readonly life: ListenerLifecycle;
  readonly #data: ListenerWorkerData;
  readonly #count: number;
  readonly #events: ListenerEvents;
  #threads: Thread[] = [];
  /** The monotonic counters of threads that have ended (sessions and gauges are 0 there). */
  #past: ListenerStats = emptyStats();
  #nextId = 1;

  constructor(
    address: string,
    config: ListenerConfig,
    events: ListenerEvents,
    context: ListenerContext,
    description: string,
  ) {
    super();
    this.#count = Math.max(2, context.workers ?? 2);
    this.description = `${description} (${this.#count} threads)`;
    this.#events = events;
    this.#data = { address, config, member: context.member, service: context.service, view: context.view() };
    const driver: ListenerDriver = {
      bind: (refusing) => this.#bind(refusing),
      refuse: async () => void (await this.#all('refuse')),
      accept: async () => void (await this.#all('accept')),
      stopListening: async () => void (await this.#all('stopListening')),
      endSessions: async () => (await this.#all('endSessions')).reduce((a, b) => a + b, 0),
      release: () => this.#release(),
      sessions: () => this.#threads.reduce((n, t) => n + t.stats.sessions, 0),
    };
    this.life = new ListenerLifecycle(this.description, driver);
  }

  /** How many threads serve it now (0 while closed). */
  get threads(): number {
    return this.#threads.length;
  }

  /** What each thread serving it now counted, as it last reported. */
  threadStats(): ListenerStats[] {
    return this.#threads.map((t) => t.stats);
  }

  stats(): ListenerStats {
    return sumAll([this.#past, ...this.#threads.map((t) => t.stats)]);
  }

  applyNote(note: ListenerNote): void {
    this.#noteTo(this.#threads, note);
  }

  #noteTo(threads: readonly Thread[], note: ListenerNote): void {
    const message: ToListenerWorker = { type: 'note', note };
    for (const t of threads) if (!t.gone) t.worker.postMessage(message);
  }

  async #bind(refusing: boolean): Promise<void> {
    this.#threads = Array.from({ length: this.#count }, () => this.#spawn());
    try {
      await this.#all(refusing ? 'bindRefusing' : 'bind');
    } catch (err) {
      await this.#terminate();
      throw err;
    }
  }

  async #release(): Promise<void> {
    try {
      await this.#all('release');
    } finally {
      await this.#terminate();
    }
  }

  /** Ends every thread; what they counted stays in the totals. */
  async #terminate(): Promise<void> {
    const threads = this.#threads;
    this.#threads = [];
    for (const t of threads) this.#fold(t);
    await Promise.all(threads.map((t) => t.worker.terminate().then(() => t.exited)));
  }

  #fold(thread: Thread): void {
    if (thread.gone) return;
    thread.gone = true;
    const done = { ...thread.stats, sessions: 0, byKind: {}, idleConnections: 0 };
    this.#past = sumAll([this.#past, done]);
  }

  /** Sends one step to every thread; resolves with each one's answer once all have answered. */
  #all(command: ListenerCommand): Promise<number[]> {
    return Promise.all(this.#threads.map((t) => this.#send(t, command)));
  }

  #send(thread: Thread, command: ListenerCommand): Promise<number> {
    if (thread.gone)
      return Promise.reject(new EbbError('EBB_LISTENER_WORKER', `${this.description}: a thread has ended`));
    const id = this.#nextId++;
    return new Promise<number>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      const message: ToListenerWorker = { type: 'command', id, command };
      thread.worker.postMessage(message);
    });
  }

  #spawn(): Thread {
    const worker = new Worker(workerFile, { workerData: this.#data });
    let exited!: () => void;
    const thread: Thread = {
      worker,
      stats: emptyStats(),
      pending: new Map(),
      exited: new Promise<void>((resolve) => (exited = resolve)),
      gone: false,
    };
    worker.on('message', (message: FromListenerWorker) => {
      switch (message.type) {
        case 'stats':
          thread.stats = message.stats;
          this.life.sessionsChanged();
          this.#events.onChange(message.urgent);
          return;
        case 'done':
          thread.pending.get(message.id)?.resolve(message.value);
          thread.pending.delete(message.id);
          return;
        case 'failed':
          thread.pending.get(message.id)?.reject(fromThreadError(message.error));
          thread.pending.delete(message.id);
          return;
        case 'error':
          this.#events.onError?.(new EbbError(message.error.code, message.error.message));
          return;
        case 'note':
          this.#noteTo(
            this.#threads.filter((t) => t !== thread),
            message.note,
          );
          this.#events.onNote?.(message.note);
          return;
      }
    });
    worker.once('error', (err) => {
      this.#events.onError?.(
        new EbbError('EBB_LISTENER_WORKER', `${this.description}: a thread failed: ${err.message}`, {
          cause: err,
        }),
      );
    });
    worker.once('exit', () => {
      // A thread that ended by itself took its connections with it: they are counted as ended.
      const wasServing = this.#threads.includes(thread);
      for (const { reject } of thread.pending.values())
        reject(new EbbError('EBB_LISTENER_WORKER', `${this.description}: a thread has ended`));
      thread.pending.clear();
      if (wasServing) {
        this.#fold(thread);
        thread.stats = emptyStats();
        this.life.sessionsChanged();
        this.#events.onChange(true);
      }
      exited();
    });
    return thread;
  }
}

/** Sums every numeric field, and `byKind` by kind (kinds' own counters, e.g. http `badRequests`, too). */
function sumAll(all: readonly ListenerStats[]): ListenerStats {
  const total: Record<string, unknown> = { ...emptyStats(), byKind: {} };
  const byKind: Record<string, number> = {};
  for (const stats of all) {
    for (const [key, value] of Object.entries(stats)) {
      if (typeof value === 'number') total[key] = ((total[key] as number | undefined) ?? 0) + value;
    }
    for (const [kind, n] of Object.entries(stats.byKind)) byKind[kind] = (byKind[kind] ?? 0) + n;
  }
  total['byKind'] = byKind;
  return total as unknown as ListenerStats;
}
