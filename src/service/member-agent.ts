import type { Logger } from 'pino';
import {
  isEmbeddedListener,
  type ListenerConfig,
  type MemberConfig,
  type PoolConfig,
  type ServiceConfig,
} from '../config/index.ts';
import { EventCode, type EbbError, type EbbEvent, type PoolView, type ServiceStatus } from '../core/index.ts';
import { createListener, type Listener, type ListenerEvents, type ListenerNote } from '../listeners/index.ts';
import { PoolKeys, type Store } from '../store/index.ts';
import { AgentCheckServer } from './agent-check-server.ts';
import { EventLog } from './event-log.ts';
import { IntentSync } from './intent-sync.ts';
import { LeaseHolder, MemberHeldError } from './lease-holder.ts';
import { LocalIntents } from './local-intents.ts';
import { ServiceRuntime } from './service-runtime.ts';
import { ServiceSlot } from './service-slot.ts';
import { StatusWriter } from './status-writer.ts';

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
  /**
   * The services this agent runs. Default: every service of the member that is not embedded; a server
   * that embeds Ebb (SPEC §12) names its one service and builds its listeners with `listeners`.
   */
  services?: readonly string[];
  /** Builds a listener instead of `createListener` (the embedded ones, which a server attaches to). */
  listeners?: (service: ServiceConfig, listener: ListenerConfig, events: ListenerEvents) => Listener;
  /** Whether to answer HAProxy's agent-check when the member has `agentCheckPort` (default true). */
  agentCheck?: boolean;
  /**
   * The pid of a process of this host whose agent for this member this one replaces (a hand-off, SPEC
   * §13): `start()` binds beside it and boots from the stored intents as they are, without taking the
   * member or confirming anything; `takeOver()` then takes its key over and confirms.
   */
  takeOverFrom?: number;
  /**
   * A note of listener `index` of a service (`ListenerEvents.onNote`) for the listeners of the same
   * config in other processes: the predecessor of a hand-off may hold the dialog it concerns.
   */
  onNote?: (service: string, index: number, note: ListenerNote) => void;
  /** More listeners per service, summed with its own: the sessions a predecessor still serves. */
  extraListeners?: (service: string, events: ListenerEvents) => Listener[];
}

/** A service whose listeners are `mode: embedded`: its server runs its agent, not `ebb up` / `ebb agent`. */
export function isEmbeddedService(service: ServiceConfig): boolean {
  return service.listeners.some(isEmbeddedListener);
}

/**
 * The agent of one member (SPEC §2, §3, §6), composed of one part per job:
 *
 * - a `ServiceSlot` per service: the wanted intent, the runtime that carries it out, what became of it;
 * - `IntentSync`: boot policy, local copy, and the watch that keeps the slots' intents current;
 * - `StatusWriter`: each service's status to the store, coalesced and retried;
 * - `EventLog`: events to the log, in-process readers and the store;
 * - `LeaseHolder`: the lease that tells the pool this agent is alive;
 * - the HAProxy agent-check responder.
 */
export class MemberAgent {
  readonly member: MemberConfig;
  /** The member's services this agent runs (see `MemberAgentOptions.services`). */
  readonly services: readonly ServiceConfig[];
  private readonly options: MemberAgentOptions;
  private readonly slots = new Map<string, ServiceSlot>();
  private readonly intents: IntentSync;
  private readonly statuses: StatusWriter;
  private readonly events: EventLog;
  private readonly lease: LeaseHolder;
  private agentCheck: AgentCheckServer | null = null;
  private stopped = false;
  /** A successor is taking over: confirm nothing (a pause waits for the successor to apply it). */
  private holding = false;
  /** Handed over: this process's events are its own business, no longer the pool's. */
  private handedOver = false;
  /** Woken whenever a service's stats change (a graceful stop waits for its sessions to end). */
  private readonly changeWaiters = new Set<() => void>();

  constructor(options: MemberAgentOptions) {
    const member = options.config.members.find((m) => m.id === options.member);
    if (!member) throw new Error(`member ${options.member} is not in the config`);
    this.member = member;
    this.options = options;
    const only = options.services;
    this.services = member.services.filter((s) => (only ? only.includes(s.id) : !isEmbeddedService(s)));
    for (const id of only ?? []) {
      if (!member.services.some((s) => s.id === id))
        throw new Error(`member ${member.id} has no service ${id}`);
    }
    const { store, logger, config } = options;
    const keys = new PoolKeys(config.pool.name);
    const common = { member: member.id, store, keys, logger };
    this.events = new EventLog({ ...common, onEvent: options.onEvent });
    this.statuses = new StatusWriter({
      ...common,
      read: (service) => this.slots.get(service)!.status(),
      // Only the member's holder writes its status (operator audit #1).
      mayWrite: () => this.lease.held && !this.holding,
    });
    this.lease = new LeaseHolder({
      ...common,
      ttlMs: config.agent.leaseTtlMs,
      ...(options.takeOverFrom !== undefined ? { takeOverFrom: options.takeOverFrom } : {}),
    });
    for (const service of this.services) {
      const runtime = new ServiceRuntime({
        member: member.id,
        service: service.id,
        listeners: (sink) => [
          ...service.listeners.map((l, index) =>
            options.listeners
              ? options.listeners(service, l, sink)
              : createListener(member.address, l, this.noteSink(sink, service.id, index), {
                  pool: config.pool.name,
                  member: member.id,
                  service,
                  view: options.view,
                  workers: config.agent.workers,
                }),
          ),
          ...(options.extraListeners?.(service.id, sink) ?? []),
        ],
        onEvent: (event) => this.publish(event),
        onChange: (urgent) => {
          this.statuses.changed(service.id, urgent);
          if (this.changeWaiters.size > 0) for (const wake of [...this.changeWaiters]) wake();
        },
        onListenerError: (err) => this.listenerError(err, service.id),
      });
      const slot = new ServiceSlot({
        member: member.id,
        config: service,
        runtime,
        logger,
        publish: (event) => this.publish(event),
        onApplied: () => this.statuses.changed(service.id, true),
      });
      this.slots.set(service.id, slot);
    }
    this.intents = new IntentSync({
      ...common,
      local: new LocalIntents(config.agent.localState, config.pool.name, member.id),
      slots: this.slots,
      continuing: options.takeOverFrom !== undefined,
    });
  }

  runtime(service: string): ServiceRuntime | undefined {
    return this.slots.get(service)?.runtime;
  }

  /** The service's status as the agent writes it to the store. */
  status(service: string): ServiceStatus | undefined {
    return this.slots.get(service)?.status();
  }

  async start(): Promise<void> {
    // One agent per member: take the member before binding anything or writing its status. A member held
    // by another live process is refused here (MemberHeldError); a store out of reach does not stop the
    // agent from serving from its local copy (SPEC §3): the claim is made when the store answers. A
    // successor binds first and takes the member over in `takeOver()`, once its predecessor has yielded.
    const successor = this.options.takeOverFrom !== undefined;
    if (!successor) await this.claimAtStart();
    // Services come up from the intents known now, whether or not the store answers (SPEC §3).
    await this.intents.boot();
    await Promise.all([...this.slots.values()].map((slot) => slot.settled()));
    if (this.member.agentCheckPort !== undefined && this.options.agentCheck !== false) {
      const primary = this.member.services[0]!.id;
      this.agentCheck = new AgentCheckServer(
        this.member.address,
        this.member.agentCheckPort,
        (service) => this.slots.get(service ?? primary)?.runtime.state ?? null,
        (err) => this.listenerError(err, null),
      );
      await this.agentCheck.start();
    }
    if (!successor) await this.serve();
  }

  /**
   * A successor's second step (SPEC §13), once its predecessor no longer accepts: takes the member's key
   * over (never absent in between), follows the intents, and writes status — this process's sessions
   * and, through `extraListeners`, the predecessor's.
   */
  async takeOver(): Promise<void> {
    await this.serve();
  }

  private async claimAtStart(): Promise<void> {
    await this.lease.claim().catch((err: unknown) => {
      if (err instanceof MemberHeldError) throw err;
      this.options.logger.warn(
        { member: this.member.id, code: 'EBB_STORE_UNAVAILABLE', err: (err as Error).message },
        'store unreachable: cannot check that no other agent holds this member; claiming it when it answers',
      );
    });
  }

  private async serve(): Promise<void> {
    await this.connectToStore().catch((err: unknown) => {
      this.options.logger.warn(
        { member: this.member.id, code: 'EBB_STORE_UNAVAILABLE', err: (err as Error).message },
        'store unreachable: serving with the last known intents, retrying',
      );
      this.retrySoon(() => this.connectToStore());
    });
    this.statuses.start();
    this.publish({
      code: EventCode.agentUp,
      member: this.member.id,
      at: Date.now(),
      data: {
        pid: process.pid,
        ...(this.options.takeOverFrom !== undefined ? { handoffFrom: this.options.takeOverFrom } : {}),
      },
    });
  }

  /** A note from another process for listener `index` of a service (see `onNote`). */
  applyNote(service: string, index: number, note: ListenerNote): void {
    this.slots.get(service)?.runtime.listener(index)?.applyNote?.(note);
  }

  /** Listener events whose notes go to `onNote`, named by service and listener. */
  private noteSink(sink: ListenerEvents, service: string, index: number): ListenerEvents {
    const onNote = this.options.onNote;
    if (!onNote) return sink;
    return { ...sink, onNote: (note) => onNote(service, index, note) };
  }

  /** Publishes an event of this agent (the runner's `agent.handoff` too); none once handed over. */
  publish(event: EbbEvent): void {
    if (!this.handedOver) this.events.publish(event);
  }

  /**
   * A successor is taking over (`true`: confirm nothing until it has; `false`: it went away, confirm
   * again). While held, intents are still applied here: only the confirmation waits.
   */
  holdConfirmations(hold: boolean): void {
    this.holding = hold;
    if (!hold) for (const service of this.services) this.statuses.changed(service.id, true);
  }

  /**
   * The predecessor's side of a hand-off (SPEC §13): stops following intents and answering the
   * agent-check, lets the successor's key stand, and closes every listener to new sessions — which the
   * successor, bound beside, takes. Live sessions go on; `sessions()` counts them, `stop()` ends what is
   * left. Resolves once nothing here takes a new session.
   */
  async handOver(): Promise<void> {
    this.handedOver = true;
    this.holding = true;
    this.intents.stop();
    this.lease.yieldToSuccessor();
    await this.agentCheck?.close();
    this.agentCheck = null;
    const slots = [...this.slots.values()];
    for (const slot of slots) slot.stop();
    await Promise.all(slots.map((slot) => slot.settled()));
    await Promise.all(slots.map((slot) => slot.runtime.handOff()));
  }

  /** Calls `changed` on every change of a service's stats (until the agent stops). */
  watch(changed: () => void): void {
    this.changeWaiters.add(changed);
  }

  /** Ends the agent: listeners close (ending any sessions left), the lease is revoked. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.intents.stop();
    await this.agentCheck?.close();
    const slots = [...this.slots.values()];
    for (const slot of slots) slot.stop();
    await Promise.all(slots.map((slot) => slot.settled()));
    await Promise.all(slots.map((slot) => slot.runtime.shutdown()));
    await this.statuses.stop();
    await this.lease.release();
  }

  /**
   * Leaves the pool politely (SPEC §12 `agent.close()`): stops following intents, pauses each running
   * service (new sessions refused, the rest drain as in any pause), waits until no session is left,
   * then stops as `stop()` does. A server shutting down this way drops nothing.
   */
  async drainAndStop(): Promise<void> {
    if (this.stopped) return this.stop();
    this.intents.stop();
    const slots = [...this.slots.values()];
    for (const slot of slots) slot.stop();
    await Promise.all(slots.map((slot) => slot.settled()));
    await Promise.all(
      slots.map(async ({ runtime }) => {
        if (runtime.state === 'running') await runtime.pause(null);
        await new Promise<void>((resolve) => {
          const wake = () => {
            if (runtime.sessions > 0) return;
            this.changeWaiters.delete(wake);
            resolve();
          };
          this.changeWaiters.add(wake);
          wake();
        });
      }),
    );
    await this.stop();
  }

  /** The member, then its intents, then every status: safe to call again after a failure. */
  private async connectToStore(): Promise<void> {
    if (this.stopped) return;
    await this.lease.claim().catch((err: unknown) => {
      if (err instanceof MemberHeldError) {
        // Taken by another process while this one served from its local copy: never overwrite its status.
        this.options.logger.error({ member: this.member.id, code: err.code }, err.message);
      }
      throw err;
    });
    await this.intents.connect();
    await Promise.all(this.services.map((s) => this.statuses.write(s.id)));
  }

  /** A failure a listener survives (already throttled per errno by the listener): for the log. */
  private listenerError(err: EbbError, service: string | null): void {
    const errno = (err.details as { errno?: unknown } | undefined)?.errno;
    this.options.logger.warn(
      { member: this.member.id, service, code: err.code, errno, err: err.message },
      'listener error',
    );
  }

  private retrySoon(work: () => Promise<void>): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      work().catch(() => this.retrySoon(work));
    }, storeRetryMs);
    timer.unref();
  }
}
