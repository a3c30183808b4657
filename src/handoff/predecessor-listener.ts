import {
  LifecycleListener,
  ListenerLifecycle,
  type ListenerEvents,
  type ListenerStats,
} from '../listeners/index.ts';
import type { Predecessor } from './predecessor.ts';

/**
 * The sessions a predecessor (the process this one replaced, SPEC §13) still serves for one service,
 * as one more listener of the service's runtime: the runtime sums them with its own, so status, drain
 * detection (`readyForOffline` waits for them) and the deadline (`endSessions` asks the predecessor to
 * end them, counted as forced there) treat both processes' sessions as the service's. It binds nothing.
 */
export class PredecessorListener extends LifecycleListener {
  readonly description: string;
  protected readonly life: ListenerLifecycle;
  readonly #predecessor: Predecessor;
  readonly #member: string;
  readonly #service: string;

  constructor(predecessor: Predecessor, member: string, service: string, events: ListenerEvents) {
    super();
    this.#predecessor = predecessor;
    this.#member = member;
    this.#service = service;
    this.description = `sessions of pid ${predecessor.pid}, handing over`;
    const none = async () => {};
    this.life = new ListenerLifecycle(this.description, {
      bind: none,
      refuse: none,
      accept: none,
      stopListening: none,
      release: none,
      endSessions: () => predecessor.endSessions(member, service),
      sessions: () => this.stats().sessions,
    });
    predecessor.onChange(() => {
      this.life.sessionsChanged();
      events.onChange(false);
    });
  }

  stats(): ListenerStats {
    return this.#predecessor.stats(this.#member, this.#service);
  }
}
