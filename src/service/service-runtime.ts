import {
  EventCode,
  InvalidTransitionError,
  ServiceState,
  isDrained,
  type EbbEvent,
  type ServiceStatus,
} from '../core/index.ts';
import type { Listener, SessionSink } from '../listeners/index.ts';

const maxTimerMs = 2 ** 31 - 1;

/** Which observed state may follow which (SPEC §2). `transition()` refuses every other move. */
const allowedMoves: Record<ServiceState, readonly ServiceState[]> = {
  stopped: ['starting'],
  starting: ['running', 'paused', 'stopped'],
  running: ['paused', 'stopping', 'stopped'],
  paused: ['running', 'stopping', 'stopped'],
  stopping: ['running', 'paused', 'stopped'],
};

export interface ServiceRuntimeOptions {
  member: string;
  service: string;
  /** Builds the listeners, each reporting to the given sink. */
  listeners: (sink: SessionSink) => Listener[];
  onEvent: (event: EbbEvent) => void;
  /** Something a status reader would see changed (state, counts). */
  onChange: (urgent: boolean) => void;
}

/**
 * One service on one member: its state machine, its listeners and its session count. Commands are
 * queued so they apply one at a time, in order; `transition()` is the only place the state changes.
 */
export class ServiceRuntime {
  readonly member: string;
  readonly service: string;
  private readonly options: ServiceRuntimeOptions;
  private readonly listeners: Listener[];
  private stateValue: ServiceState = ServiceState.stopped;
  private sessionCount = 0;
  private forcedCount = 0;
  private acceptedCount = 0;
  private upstreamFailureCount = 0;
  private refusedCount = 0;
  private drainStartedAt: number | null = null;
  private drainedAt: number | null = null;
  private lastError: string | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  intentRevision = 0;

  constructor(options: ServiceRuntimeOptions) {
    this.options = options;
    this.member = options.member;
    this.service = options.service;
    const sink: SessionSink = {
      opened: () => {
        this.sessionCount++;
        this.acceptedCount++;
        this.options.onChange(false);
      },
      closed: (forced) => this.onSessionClosed(forced),
      refused: () => {
        this.refusedCount++;
        this.options.onChange(false);
      },
      upstreamFailed: () => {
        this.upstreamFailureCount++;
        this.options.onChange(false);
      },
    };
    this.listeners = options.listeners(sink);
  }

  get state(): ServiceState {
    return this.stateValue;
  }

  get sessions(): number {
    return this.sessionCount;
  }

  get accepting(): boolean {
    return this.stateValue === ServiceState.running;
  }

  status(): ServiceStatus {
    return {
      state: this.stateValue,
      accepting: this.accepting,
      sessions: this.sessionCount,
      drained: isDrained(this.stateValue, this.sessionCount),
      forced: this.forcedCount,
      accepted: this.acceptedCount,
      upstreamFailures: this.upstreamFailureCount,
      refused: this.refusedCount,
      intentRevision: this.intentRevision,
      drainStartedAt: this.drainStartedAt,
      drainedAt: this.drainedAt,
      error: this.lastError,
      at: Date.now(),
    };
  }

  /** stopped → running, or → paused when the durable intent says paused (SPEC §3). */
  start(paused = false): Promise<void> {
    return this.enqueue(async () => {
      if (this.stateValue !== ServiceState.stopped) return;
      this.transition(ServiceState.starting);
      try {
        for (const listener of this.listeners) await listener.open(paused);
      } catch (err) {
        this.lastError = (err as Error).message;
        for (const listener of this.listeners) await listener.close().catch(() => {});
        this.transition(ServiceState.stopped, { error: this.lastError });
        this.emit(EventCode.serviceFailed, { error: this.lastError });
        throw err;
      }
      this.lastError = null;
      this.forcedCount = 0;
      if (paused) {
        this.beginDrain(ServiceState.paused, null);
      } else {
        this.transition(ServiceState.running);
        this.emit(EventCode.serviceStarted);
      }
    });
  }

  /** running → paused: returns once every listener refuses new sessions (SPEC §2). */
  pause(deadlineAt: number | null): Promise<void> {
    return this.enqueue(async () => {
      if (this.stateValue === ServiceState.paused) return this.armDeadline(deadlineAt, false);
      if (this.stateValue !== ServiceState.running && this.stateValue !== ServiceState.stopping) {
        throw new InvalidTransitionError(
          `${this.name()} is ${this.stateValue}; only a running service can be paused`,
        );
      }
      for (const listener of this.listeners) await listener.refuse();
      this.beginDrain(ServiceState.paused, deadlineAt);
    });
  }

  /** paused or stopping → running. */
  resume(): Promise<void> {
    return this.enqueue(async () => {
      if (this.stateValue === ServiceState.running) return;
      if (this.stateValue !== ServiceState.paused && this.stateValue !== ServiceState.stopping) {
        throw new InvalidTransitionError(
          `${this.name()} is ${this.stateValue}; only a paused service can be resumed`,
        );
      }
      for (const listener of this.listeners) await listener.accept();
      this.clearDeadline();
      this.drainStartedAt = null;
      this.drainedAt = null;
      this.transition(ServiceState.running);
      this.emit(EventCode.serviceResumed);
    });
  }

  /**
   * Graceful: refuse new sessions, become stopped when the last one ends (or at the deadline).
   * Not graceful: end every session now, each counted as forced.
   */
  stop(graceful: boolean, deadlineAt: number | null): Promise<void> {
    return this.enqueue(async () => {
      if (this.stateValue === ServiceState.stopped) return;
      if (graceful) {
        if (this.stateValue === ServiceState.stopping) return this.armDeadline(deadlineAt, true);
        for (const listener of this.listeners) await listener.refuse();
        this.beginDrain(ServiceState.stopping, deadlineAt);
        return;
      }
      await this.force('stop');
      await this.finishStop();
    });
  }

  /** For shutting the agent down: closes listeners, ending whatever sessions remain. */
  async shutdown(): Promise<void> {
    await this.enqueue(async () => {
      this.clearDeadline();
      for (const listener of this.listeners) await listener.close().catch(() => {});
    });
  }

  private beginDrain(state: 'paused' | 'stopping', deadlineAt: number | null): void {
    const wasDraining = this.stateValue === ServiceState.paused || this.stateValue === ServiceState.stopping;
    this.transition(state);
    if (!wasDraining) {
      this.drainStartedAt = Date.now();
      this.drainedAt = null;
    }
    this.emit(state === ServiceState.paused ? EventCode.servicePaused : EventCode.serviceStopping, {
      sessions: this.sessionCount,
      deadlineAt,
    });
    this.armDeadline(deadlineAt, state === ServiceState.stopping);
    if (this.sessionCount > 0) return;
    if (this.drainedAt === null) this.onDrained();
    else if (state === ServiceState.stopping) void this.enqueue(() => this.finishStop());
  }

  private armDeadline(deadlineAt: number | null, thenStop: boolean): void {
    this.clearDeadline();
    if (deadlineAt === null) return;
    const fire = () => {
      // Timers hold at most 2^31-1 ms (about 24.8 days): a later deadline is reached in several steps.
      if (Date.now() < deadlineAt) return this.armDeadline(deadlineAt, thenStop);
      void this.enqueue(async () => {
        if (this.stateValue !== ServiceState.paused && this.stateValue !== ServiceState.stopping) return;
        await this.force('deadline');
        if (thenStop && this.stateValue === ServiceState.stopping) await this.finishStop();
      }).catch(() => {});
    };
    this.deadlineTimer = setTimeout(fire, Math.min(maxTimerMs, Math.max(0, deadlineAt - Date.now())));
    this.deadlineTimer.unref();
  }

  private clearDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  /** Ends every remaining session; forced sessions are never silent (SPEC §2). */
  private async force(why: 'deadline' | 'stop'): Promise<void> {
    const counts = await Promise.all(this.listeners.map((l) => l.endSessions()));
    const ended = counts.reduce((a, b) => a + b, 0);
    if (ended > 0) this.emit(EventCode.sessionForced, { count: ended, why });
  }

  private onSessionClosed(forced: boolean): void {
    this.sessionCount--;
    if (forced) this.forcedCount++;
    const drainedNow =
      this.sessionCount === 0 && (this.stateValue === 'paused' || this.stateValue === 'stopping');
    if (drainedNow) {
      // Decide drained at once rather than behind queued commands: this is the drain-detection latency.
      this.onDrained();
    } else {
      this.options.onChange(false);
    }
  }

  /** Sessions reached 0 while refusing: the drain is complete. Never waits on the command queue. */
  private onDrained(): void {
    if (this.sessionCount !== 0 || this.drainedAt !== null) return;
    if (this.stateValue !== ServiceState.paused && this.stateValue !== ServiceState.stopping) return;
    this.drainedAt = Date.now();
    this.emit(EventCode.serviceDrained, {
      drainMs: this.drainStartedAt === null ? 0 : this.drainedAt - this.drainStartedAt,
      forced: this.forcedCount,
    });
    this.options.onChange(true);
    if (this.stateValue === ServiceState.stopping) void this.enqueue(() => this.finishStop());
  }

  private async finishStop(): Promise<void> {
    if (this.stateValue === ServiceState.stopped) return;
    this.clearDeadline();
    for (const listener of this.listeners) await listener.close();
    this.drainStartedAt = null;
    this.transition(ServiceState.stopped);
    this.emit(EventCode.serviceStopped, { forced: this.forcedCount });
  }

  /** The one place the state changes. */
  private transition(to: ServiceState, _why?: Record<string, unknown>): void {
    const from = this.stateValue;
    if (from === to) return;
    if (!allowedMoves[from].includes(to)) {
      throw new InvalidTransitionError(`${this.name()}: cannot go from ${from} to ${to}`, { from, to });
    }
    this.stateValue = to;
    this.options.onChange(true);
  }

  private emit(code: EbbEvent['code'], data?: Record<string, unknown>): void {
    this.options.onEvent({
      code,
      member: this.member,
      service: this.service,
      at: Date.now(),
      data: { state: this.stateValue, sessions: this.sessionCount, ...data },
    });
  }

  private enqueue<T>(work: () => Promise<T> | T): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
  }

  private name(): string {
    return `${this.member}/${this.service}`;
  }
}
