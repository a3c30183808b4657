import {
  LifecycleListener,
  ListenerLifecycle,
  type ListenerEvents,
  type ListenerStats,
} from '../listeners/index.ts';
import type { PredecessorGroup } from './predecessor-group.ts';

/**
 * The sessions predecessors (the process this one replaced, and any that re-attached, SPEC §13) still
 * serve for one service,
 * as one more listener of the service's runtime: the runtime sums them with its own, so status, drain
 * detection (`readyForOffline` waits for them) and the deadline (`endSessions` asks the predecessor to
 * end them, counted as forced there) treat both processes' sessions as the service's. It binds nothing.
 */
export class PredecessorListener extends LifecycleListener {
  readonly description: string;
  protected readonly life: ListenerLifecycle;
  readonly #predecessors: PredecessorGroup;
  readonly #member: string;
  readonly #service: string;

  constructor(predecessors: PredecessorGroup, member: string, service: string, events: ListenerEvents) {
    super();
    this.#predecessors = predecessors;
    this.#member = member;
    this.#service = service;
    this.description = 'sessions of the processes this one took over from';
    const none = async () => {};
    this.life = new ListenerLifecycle(this.description, {
      bind: none,
      refuse: none,
      accept: none,
      stopListening: none,
      release: none,
      endSessions: () => predecessors.endSessions(member, service),
      sessions: () => this.stats().sessions,
    });
    predecessors.onChange(() => {
      this.life.sessionsChanged();
      events.onChange(false);
    });
  }

  stats(): ListenerStats {
    return this.#predecessors.stats(this.#member, this.#service);
  }

  /**
   * This process stops (or exits after its own hand-off): the predecessors' sessions are theirs, not
   * ended here; each re-attaches to whoever holds the control socket next, or finishes alone.
   */
  async detach(): Promise<void> {}
}
