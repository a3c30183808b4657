import {
  EbbError,
  EventCode,
  ForceEndError,
  InvalidTransitionError,
  ServiceState,
  isDrained,
  type EbbEvent,
  type ServiceStatus,
} from '../core/index.ts';
import { sumStats, type Listener, type ListenerEvents, type ListenerStats } from '../listeners/index.ts';

const maxTimerMs = 2 ** 31 - 1;

export type RuntimeStatus = Omit<ServiceStatus, 'intentRevision' | 'applyError'>;

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
  /** Builds the listeners, each telling `events` when its stats change. */
  listeners: (events: ListenerEvents) => Listener[];
  onEvent: (event: EbbEvent) => void;
  /** Something a status reader would see changed (state, counts). */
  onChange: (urgent: boolean) => void;
  /**
   * A listener met a failure it survives (accept errors such as EMFILE, socket errors), already throttled
   * per errno; the message names the socket. For the log; accept errors are counted in status too.
   */
  onListenerError?: (err: EbbError) => void;
}

/** Why sessions were ended by Ebb (the `why` of `session.forced`). */
type ForceReason = 'deadline' | 'stop' | 'shutdown' | 'handoff';

/**
 * One service on one member: its state machine and its listeners, whose `stats()` it sums (it keeps no
 * count of its own). Commands are queued so they apply one at a time, in order; `transition()` is the
 * only place the state changes.
 */
export class ServiceRuntime {
  readonly member: string;
  readonly service: string;
  private readonly options: ServiceRuntimeOptions;
  private readonly listeners: Listener[];
  private stateValue: ServiceState = ServiceState.stopped;
  /** The listeners' `forced` total when the service last started: status counts from there. */
  private forcedAtStart = 0;
  private drainStartedAt: number | null = null;
  private drainedAt: number | null = null;
  private lastError: string | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: ServiceRuntimeOptions) {
    this.options = options;
    this.member = options.member;
    this.service = options.service;
    const events: ListenerEvents = {
      onChange: (urgent) => this.onListenerChange(urgent),
      onError: (err) => this.options.onListenerError?.(err),
    };
    this.listeners = options.listeners(events);
  }

  get state(): ServiceState {
    return this.stateValue;
  }

  get sessions(): number {
    let sessions = 0;
    for (const listener of this.listeners) sessions += listener.stats().sessions;
    return sessions;
  }

  /** Its listener at `index` (the order of the service's config). */
  listener(index: number): Listener | undefined {
    return this.listeners[index];
  }

  /** The listeners' stats summed: the service's. */
  stats(): ListenerStats {
    return sumStats(this.listeners.map((l) => l.stats()));
  }

  get accepting(): boolean {
    return this.stateValue === ServiceState.running;
  }

  /** The service as its runtime sees it; which intent it carries out is the agent's to add (ServiceSlot). */
  status(): RuntimeStatus {
    const stats = this.stats();
    return {
      state: this.stateValue,
      accepting: this.accepting,
      sessions: stats.sessions,
      sessionsByKind: stats.byKind,
      drained: isDrained(this.stateValue, stats.sessions),
      forced: stats.forced - this.forcedAtStart,
      accepted: stats.accepted,
      upstreamFailures: stats.upstreamFailures,
      refused: stats.refused,
      acceptErrors: stats.acceptErrors,
      idleConnections: stats.idleConnections,
      ...(stats.flows === undefined ? {} : { flows: stats.flows }),
      drainStartedAt: this.drainStartedAt,
      drainedAt: this.drainedAt,
      error: this.lastError ?? this.listenerFault(),
      at: Date.now(),
    };
  }

  /** stopped → running, or → paused when the durable intent says paused (SPEC §3). */
  start(paused = false): Promise<void> {
    return this.enqueue(async () => {
      if (this.stateValue !== ServiceState.stopped) return;
      this.transition(ServiceState.starting);
      this.forcedAtStart = this.stats().forced;
      try {
        for (const listener of this.listeners) await listener.open(paused);
      } catch (err) {
        this.lastError = (err as Error).message;
        // The listeners that did open go again, ending any session one took meanwhile; a failure to do so
        // is told along with the first, never dropped.
        const cleanup = await Promise.allSettled(this.listeners.map((l) => l.destroy()));
        const cleanupErrors = cleanup.flatMap((r) => (r.status === 'rejected' ? [errorText(r.reason)] : []));
        const forced = cleanup.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value : 0), 0);
        this.transition(ServiceState.stopped, { error: this.lastError });
        this.emit(EventCode.serviceFailed, {
          error: this.lastError,
          ...errorFields(err),
          ...(forced > 0 ? { forced } : {}),
          ...(cleanupErrors.length > 0 ? { cleanupErrors } : {}),
        });
        throw err;
      }
      this.lastError = null;
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
      if (this.stateValue === ServiceState.stopped) {
        // Nothing to stop, but a listener that keeps state outside Ebb (a kernel rule) learns the service
        // is stopped: at boot with a stopped intent, this is its only word (closed listeners stay closed).
        await Promise.all(this.listeners.map((l) => l.close()));
        return;
      }
      if (graceful) {
        if (this.stateValue === ServiceState.stopping) return this.armDeadline(deadlineAt, true);
        for (const listener of this.listeners) await listener.refuse();
        this.beginDrain(ServiceState.stopping, deadlineAt);
        return;
      }
      this.clearDeadline();
      await this.destroyListeners('stop');
      this.becomeStopped();
    });
  }

  /**
   * For shutting the agent down: every listener is destroyed, ending whatever sessions remain (counted
   * as forced, with a `session.forced` event). A failure is surfaced as `service.failed`, not thrown:
   * the agent goes on shutting down its other services.
   */
  async shutdown(): Promise<void> {
    await this.enqueue(async () => {
      this.clearDeadline();
      await this.destroyListeners('shutdown').catch((err: unknown) => this.failed(err, 'shutdown'));
    });
  }

  /**
   * Hands the service over to a successor process bound beside this one (SPEC §13): every listener
   * stops taking new sessions — the successor takes them — and the live ones go on until they end (or
   * `endSessions()` ends them); kernel listeners detach, leaving rules and connections to the successor.
   * The state stays as it is, and no deadline of this process fires: the successor carries the intent
   * from here. Resolves once no listener takes new sessions.
   */
  async handOff(): Promise<void> {
    await this.enqueue(async () => {
      this.clearDeadline();
      await Promise.all(this.listeners.map((l) => (l.detach ? l.detach() : l.closeToNew())));
    });
  }

  /**
   * Ends every session left now, counted as forced (the successor's deadline or stop, or the hand-off's
   * own deadline); resolves with how many.
   */
  async endSessions(): Promise<number> {
    return this.enqueue(async () => {
      const counts = await this.settleAll('handoff', (l) => l.destroy());
      this.reportForced(counts, 'handoff');
      return counts.reduce((a, b) => a + b, 0);
    });
  }

  /** The first listener's fault (`Listener.fault`): status shows it as the service's error. */
  private listenerFault(): string | null {
    for (const listener of this.listeners) if (listener.fault) return listener.fault;
    return null;
  }

  private beginDrain(state: 'paused' | 'stopping', deadlineAt: number | null): void {
    const wasDraining = this.stateValue === ServiceState.paused || this.stateValue === ServiceState.stopping;
    this.transition(state);
    if (!wasDraining) {
      this.drainStartedAt = Date.now();
      this.drainedAt = null;
    }
    const sessions = this.sessions;
    this.emit(state === ServiceState.paused ? EventCode.servicePaused : EventCode.serviceStopping, {
      sessions,
      deadlineAt,
    });
    this.armDeadline(deadlineAt, state === ServiceState.stopping);
    if (sessions > 0) return;
    if (this.drainedAt === null) this.onDrained();
    else if (state === ServiceState.stopping) this.finishStopSoon();
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
      }).catch((err: unknown) => this.failed(err, 'deadline'));
    };
    this.deadlineTimer = setTimeout(fire, Math.min(maxTimerMs, Math.max(0, deadlineAt - Date.now())));
    this.deadlineTimer.unref();
  }

  private clearDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  /**
   * Ends every remaining session, the listeners staying as they are (a paused SIP service still answers
   * 503); forced sessions are never silent (SPEC §2).
   */
  private async force(why: ForceReason): Promise<void> {
    const counts = await this.settleAll(why, (l) => l.endSessions());
    this.reportForced(counts, why);
  }

  /** Stops every listener and ends its sessions now (hard stop, agent shutdown). */
  private async destroyListeners(why: ForceReason): Promise<void> {
    // At shutdown, sessions the server holds itself (mode kernel) are not Ebb's to end.
    const counts = await this.settleAll(why, (l) =>
      why === 'shutdown' && l.detach ? l.detach().then(() => 0) : l.destroy(),
    );
    this.reportForced(counts, why);
  }

  /** Runs `work` on every listener; if any failed, throws once they all settled, naming each failure. */
  private async settleAll(why: ForceReason, work: (l: Listener) => Promise<number>): Promise<number[]> {
    const results = await Promise.allSettled(this.listeners.map(work));
    const failures = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`${this.listeners[i]!.description}: ${errorText(r.reason)}`] : [],
    );
    if (failures.length > 0) {
      const first = results.find((r) => r.status === 'rejected')!.reason as unknown;
      const err = new ForceEndError(
        `${this.name()}: ending sessions (${why}) failed: ${failures.join('; ')}`,
        first,
      );
      this.reportForced(
        results.map((r) => (r.status === 'fulfilled' ? r.value : 0)),
        why,
      );
      throw err;
    }
    return results.map((r) => (r as PromiseFulfilledResult<number>).value);
  }

  private reportForced(counts: number[], why: ForceReason): void {
    const ended = counts.reduce((a, b) => a + b, 0);
    if (ended > 0) this.emit(EventCode.sessionForced, { count: ended, why });
  }

  /** A command that ran on its own (a deadline, a stop finishing, shutdown) failed: said, never dropped. */
  private failed(err: unknown, during: 'deadline' | 'stop' | 'shutdown'): void {
    this.lastError = errorText(err);
    this.emit(EventCode.serviceFailed, { error: this.lastError, during, ...errorFields(err) });
    this.options.onChange(true);
  }

  /**
   * A listener's stats changed. Sessions reaching 0 while refusing is decided here and now rather than
   * behind queued commands: this is the drain-detection latency.
   */
  private onListenerChange(urgent: boolean): void {
    const draining = this.stateValue === ServiceState.paused || this.stateValue === ServiceState.stopping;
    if (draining && this.drainedAt === null && this.sessions === 0) this.onDrained();
    else this.options.onChange(urgent);
  }

  /** Sessions reached 0 while refusing: the drain is complete. Never waits on the command queue. */
  private onDrained(): void {
    if (this.drainedAt !== null || this.sessions !== 0) return;
    if (this.stateValue !== ServiceState.paused && this.stateValue !== ServiceState.stopping) return;
    this.drainedAt = Date.now();
    this.emit(EventCode.serviceDrained, {
      drainMs: this.drainStartedAt === null ? 0 : this.drainedAt - this.drainStartedAt,
      forced: this.forcedSinceStart(),
    });
    this.options.onChange(true);
    if (this.stateValue === ServiceState.stopping) this.finishStopSoon();
  }

  private finishStopSoon(): void {
    void this.enqueue(() => this.finishStop()).catch((err: unknown) => this.failed(err, 'stop'));
  }

  /** Graceful: no session is left, so `close()` (let work finish) returns at once. */
  private async finishStop(): Promise<void> {
    if (this.stateValue === ServiceState.stopped) return;
    this.clearDeadline();
    const results = await Promise.allSettled(this.listeners.map((l) => l.close()));
    const failed = results.find((r) => r.status === 'rejected');
    this.becomeStopped();
    if (failed) throw failed.reason;
  }

  private becomeStopped(): void {
    this.drainStartedAt = null;
    this.transition(ServiceState.stopped);
    this.emit(EventCode.serviceStopped, { forced: this.forcedSinceStart() });
  }

  private forcedSinceStart(): number {
    return this.stats().forced - this.forcedAtStart;
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
      data: { state: this.stateValue, sessions: this.sessions, ...data },
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The stable code (and errno) of an error, for event data. */
function errorFields(err: unknown): { code?: string; errno?: string } {
  if (!(err instanceof EbbError)) return {};
  const errno = err.details?.errno;
  return { code: err.code, ...(typeof errno === 'string' ? { errno } : {}) };
}
