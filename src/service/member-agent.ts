import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { MemberConfig, PoolConfig } from '../config/index.ts';
import {
  EventCode,
  defaultIntent,
  parseDuration,
  parseIntent,
  type EbbEvent,
  type PoolView,
  type ServiceIntent,
} from '../core/index.ts';
import { createListener } from '../listeners/index.ts';
import { PoolKeys, type Lease, type Store, type Watcher } from '../store/index.ts';
import { AgentCheckServer } from './agent-check-server.ts';
import { bootIntent } from './boot-intent.ts';
import { LocalIntents, type LocalIntent } from './local-intents.ts';
import { ServiceRuntime } from './service-runtime.ts';

/**
 * Session-count changes are written at most this often; state changes (and a drain completing) are
 * written at once. A shared etcd cluster carries every member's writes, so counts go slower there.
 */
const statusCoalesceMs = { sqlite: 50, etcd: 500 } as const;
/** Events kept in the store per member, for late readers. */
const eventsKept = 500;
/** How long boot waits for the shared store before using the local copy of the intents. */
const storeBootTimeoutMs = 3000;
/** How often an agent cut off from the store tries again. */
const storeRetryMs = 1000;

export interface MemberAgentOptions {
  config: PoolConfig;
  member: string;
  store: Store;
  logger: Logger;
  /** Also told of every event, for in-process listeners (the API's event stream). */
  onEvent?: (event: EbbEvent) => void;
  /** The pool as the store describes it (listeners use it to redirect to accepting members). */
  view: () => PoolView;
}

/**
 * The agent of one member: runs its services, applies the intents written to the store, reports each
 * service's status back, and holds a lease so the pool knows it is alive (SPEC §2, §3, §6).
 */
export class MemberAgent {
  readonly member: MemberConfig;
  private readonly options: MemberAgentOptions;
  private readonly keys: PoolKeys;
  private readonly runtimes = new Map<string, ServiceRuntime>();
  private readonly intents = new Map<string, LocalIntent>();
  private readonly local: LocalIntents;
  private readonly applying = new Map<string, Promise<void>>();
  private readonly flushTimers = new Map<string, NodeJS.Timeout>();
  private readonly statusWrites = new Map<string, Promise<void>>();
  private readonly queuedStatusWrites = new Map<string, Promise<void>>();
  private readonly recentEventKeys: string[] = [];
  private eventSeq = 0;
  private lease: Lease | null = null;
  private readonly pendingBootWrites = new Set<string>();
  private readonly failedStatusWrites = new Set<string>();
  private statusRetryTimer: NodeJS.Timeout | null = null;
  private agentCheck: AgentCheckServer | null = null;
  private watcher: Watcher | null = null;
  private stopped = false;

  constructor(options: MemberAgentOptions) {
    const member = options.config.members.find((m) => m.id === options.member);
    if (!member) throw new Error(`member ${options.member} is not in the config`);
    this.member = member;
    this.options = options;
    this.keys = new PoolKeys(options.config.pool.name);
    this.local = new LocalIntents(options.config.agent.localState, options.config.pool.name, member.id);
    for (const service of member.services) {
      const runtime = new ServiceRuntime({
        member: member.id,
        service: service.id,
        listeners: (sink) =>
          service.listeners.map((l) =>
            createListener(member.address, l, sink, { member: member.id, service, view: options.view }),
          ),
        onEvent: (event) => this.publish(event),
        onChange: (urgent) => this.scheduleStatus(service.id, urgent),
      });
      this.runtimes.set(service.id, runtime);
    }
  }

  runtime(service: string): ServiceRuntime | undefined {
    return this.runtimes.get(service);
  }

  async start(): Promise<void> {
    const stored = await this.readStoredIntents();
    const now = Date.now();
    for (const service of this.member.services) {
      const current = stored.get(service.id) ?? { intent: defaultIntent(service.startup, now), revision: 0 };
      const boot = bootIntent(current.intent, service.onRestart, now);
      this.intents.set(service.id, { intent: boot, revision: current.revision });
      if (boot !== current.intent) this.pendingBootWrites.add(service.id);
    }
    this.saveLocalCopy();
    // Services come up from the intents known now, whether or not the store answers (SPEC §3).
    await Promise.all(this.member.services.map((s) => this.apply(s.id)));
    if (this.member.agentCheckPort !== undefined) {
      const primary = this.member.services[0]!.id;
      this.agentCheck = new AgentCheckServer(
        this.member.address,
        this.member.agentCheckPort,
        (service) => this.runtimes.get(service ?? primary)?.state ?? null,
      );
      await this.agentCheck.start();
    }
    await this.connectToStore().catch((err: unknown) => {
      this.options.logger.warn(
        { member: this.member.id, err: (err as Error).message },
        'store unreachable: serving with the last known intents, retrying',
      );
      this.retrySoon(() => this.connectToStore());
    });
    this.statusRetryTimer = setInterval(() => this.rewriteFailedStatuses(), storeRetryMs);
    this.statusRetryTimer.unref();
    this.publish({
      code: EventCode.agentUp,
      member: this.member.id,
      at: Date.now(),
      data: { pid: process.pid },
    });
  }

  /**
   * Watches this member's intents, writes what boot decided, catches up on changes made while the store
   * was out of reach, takes the lease and republishes every status. Safe to call again after a failure.
   */
  private async connectToStore(): Promise<void> {
    if (this.stopped) return;
    const prefix = this.keys.intents(this.member.id);
    this.watcher ??= await this.options.store.watch(prefix, (events) => {
      for (const event of events) {
        const parsed = this.keys.parse(event.key);
        if (!parsed?.service || event.value === null) continue;
        this.learnIntent(parsed.service, event.value, event.modRevision);
      }
    });
    for (const service of [...this.pendingBootWrites]) {
      const entry = this.intents.get(service)!;
      const revision = await this.options.store.put(
        this.keys.intent(this.member.id, service),
        JSON.stringify(entry.intent),
      );
      this.pendingBootWrites.delete(service);
      this.learnIntent(service, JSON.stringify(entry.intent), revision);
    }
    for (const row of await this.options.store.list(prefix)) {
      const parsed = this.keys.parse(row.key);
      if (parsed?.service) this.learnIntent(parsed.service, row.value, row.modRevision);
    }
    await this.holdLease();
    await Promise.all(this.member.services.map((s) => this.writeStatus(s.id)));
  }

  /** A newer intent from the store: remember it, keep the local copy, apply it. */
  private learnIntent(service: string, value: string, revision: number): void {
    if (!this.runtimes.has(service) || this.pendingBootWrites.has(service)) return;
    const known = this.intents.get(service);
    if (known && known.revision >= revision) return;
    const intent = parseIntent(value);
    if (!intent) return;
    this.intents.set(service, { intent, revision });
    this.saveLocalCopy();
    void this.apply(service);
  }

  private retrySoon(work: () => Promise<void>): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      work().catch(() => this.retrySoon(work));
    }, storeRetryMs);
    timer.unref();
  }

  /** Ends the agent: listeners close (ending any sessions left), the lease is revoked. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.close();
    if (this.statusRetryTimer) clearInterval(this.statusRetryTimer);
    await this.agentCheck?.close();
    for (const timer of this.flushTimers.values()) clearTimeout(timer);
    await Promise.all([...this.applying.values()]);
    await Promise.all([...this.runtimes.values()].map((r) => r.shutdown()));
    await Promise.all([...this.statusWrites.values()]);
    // Revoking the lease removes the agent key; readers of the store announce agent.down from that.
    await this.lease?.revoke().catch(() => {});
  }

  /** Drives one service towards its intent; applications for one service run one after another. */
  private apply(serviceId: string): Promise<void> {
    const previous = this.applying.get(serviceId) ?? Promise.resolve();
    const next = previous.then(() => this.applyNow(serviceId));
    this.applying.set(serviceId, next);
    return next;
  }

  private async applyNow(serviceId: string): Promise<void> {
    const runtime = this.runtimes.get(serviceId)!;
    const entry = this.intents.get(serviceId)!;
    const { intent, revision } = entry;
    if (this.stopped || revision < runtime.intentRevision) return;
    try {
      await this.drive(runtime, intent);
    } catch (err) {
      this.options.logger.error(
        { member: this.member.id, service: serviceId, err: (err as Error).message },
        'apply failed',
      );
    }
    runtime.intentRevision = revision;
    // Not awaited: a store that is out of reach must not hold up the services (the write is retried).
    void this.writeStatus(serviceId);
  }

  private async drive(runtime: ServiceRuntime, intent: ServiceIntent): Promise<void> {
    const state = runtime.state;
    if (intent.run === 'running') {
      if (state === 'stopped') await runtime.start(false);
      else if (state === 'paused' || state === 'stopping') await runtime.resume();
    } else if (intent.run === 'paused') {
      if (state === 'stopped') await runtime.start(true);
      else await runtime.pause(intent.deadlineAt);
    } else {
      await runtime.stop(intent.graceful, intent.deadlineAt);
    }
  }

  private async holdLease(): Promise<void> {
    if (this.lease || this.stopped) return;
    const ttl = parseDuration(this.options.config.agent.leaseTtl, 'agent.leaseTtl');
    const lease = await this.options.store.grantLease(ttl);
    const info = { pid: process.pid, host: hostname(), startedAt: Date.now() };
    await this.options.store.put(this.keys.agent(this.member.id), JSON.stringify(info), { lease });
    this.lease = lease;
    lease.onLost(() => {
      if (this.stopped) return;
      this.lease = null;
      this.options.logger.warn({ member: this.member.id }, 'agent lease lost; taking a new one');
      this.holdLease().catch(() => this.retrySoon(() => this.holdLease()));
    });
  }

  private async readStoredIntents(): Promise<Map<string, LocalIntent>> {
    const prefix = this.keys.intents(this.member.id);
    try {
      const rows = await withTimeout(this.options.store.list(prefix), storeBootTimeoutMs);
      const out = new Map<string, LocalIntent>();
      for (const row of rows) {
        const parsed = this.keys.parse(row.key);
        const intent = parseIntent(row.value);
        if (parsed?.service && intent) out.set(parsed.service, { intent, revision: row.modRevision });
      }
      return out;
    } catch (err) {
      this.options.logger.warn(
        { member: this.member.id, err: (err as Error).message },
        'store unreachable at boot: using the local copy of the intents',
      );
      return this.local.read();
    }
  }

  private saveLocalCopy(): void {
    try {
      this.local.write(this.intents);
    } catch (err) {
      this.options.logger.error(
        { err: (err as Error).message, path: this.local.path },
        'cannot write local intents',
      );
    }
  }

  private scheduleStatus(serviceId: string, urgent: boolean): void {
    if (this.stopped) return;
    if (urgent) {
      void this.writeStatus(serviceId);
      return;
    }
    if (this.flushTimers.has(serviceId)) return;
    const timer = setTimeout(() => {
      this.flushTimers.delete(serviceId);
      void this.writeStatus(serviceId);
    }, statusCoalesceMs[this.options.store.kind]);
    this.flushTimers.set(serviceId, timer);
  }

  /** Writes the service's status as it is when the write runs, after any write already under way. */
  private writeStatus(serviceId: string): Promise<void> {
    // A write that is queued but not started will send the status as it is then: no need for another,
    // and with a slow store the queue would otherwise grow without bound.
    const queued = this.queuedStatusWrites.get(serviceId);
    if (queued) return queued;
    const runtime = this.runtimes.get(serviceId)!;
    const previous = this.statusWrites.get(serviceId) ?? Promise.resolve();
    const next = previous.then(async () => {
      this.queuedStatusWrites.delete(serviceId);
      try {
        await this.options.store.put(
          this.keys.status(this.member.id, serviceId),
          JSON.stringify(runtime.status()),
        );
        this.failedStatusWrites.delete(serviceId);
      } catch (err) {
        // Retried every second by rewriteFailedStatuses(); say so once, not every second.
        if (!this.failedStatusWrites.has(serviceId)) {
          this.options.logger.warn(
            { member: this.member.id, service: serviceId, err: (err as Error).message },
            'status write failed; retrying',
          );
        }
        this.failedStatusWrites.add(serviceId);
      }
    });
    this.statusWrites.set(serviceId, next);
    this.queuedStatusWrites.set(serviceId, next);
    return next;
  }

  private rewriteFailedStatuses(): void {
    for (const service of [...this.failedStatusWrites]) void this.writeStatus(service);
  }

  private publish(event: EbbEvent): void {
    this.options.logger.info(
      { event: event.code, member: event.member, service: event.service, ...event.data },
      event.code,
    );
    this.options.onEvent?.(event);
    const key = this.keys.event(event.at, event.member, ++this.eventSeq);
    this.recentEventKeys.push(key);
    const store = this.options.store;
    void store.put(key, JSON.stringify(event)).catch(() => {});
    if (this.recentEventKeys.length > eventsKept)
      void store.delete(this.recentEventKeys.shift()!).catch(() => {});
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
