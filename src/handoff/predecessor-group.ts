import { sumStats, type ListenerStats } from '../listeners/index.ts';
import type { NoteMessage } from './handoff-messages.ts';
import type { Predecessor } from './predecessor.ts';

/**
 * The processes this one took over from that still serve sessions (SPEC §13): the one it replaced, and
 * any that re-attached when their own successor exited before them. Counted, ended and told of notes as
 * one; each leaves the group when it is done.
 */
export class PredecessorGroup {
  readonly #members = new Set<Predecessor>();
  readonly #watchers = new Set<() => void>();

  add(predecessor: Predecessor): void {
    this.#members.add(predecessor);
    predecessor.onChange(() => this.#notify());
    void predecessor.finished.then(() => {
      // Its counters stay in the sums (monotonic); it has no session left.
      this.#notify();
    });
    this.#notify();
  }

  get size(): number {
    return this.#members.size;
  }

  /** Sessions they all still serve. */
  get sessions(): number {
    let n = 0;
    for (const p of this.#members) n += p.sessions;
    return n;
  }

  stats(member: string, service: string): ListenerStats {
    return sumStats([...this.#members].map((p) => p.stats(member, service)));
  }

  onChange(changed: () => void): void {
    this.#watchers.add(changed);
  }

  async endSessions(member: string, service: string): Promise<number> {
    const counts = await Promise.all([...this.#members].map((p) => p.endSessions(member, service)));
    return counts.reduce((a, b) => a + b, 0);
  }

  note(message: Omit<NoteMessage, 'type'>): void {
    for (const p of this.#members) p.note(message);
  }

  /**
   * This process stops: the connections to its predecessors close, and each of them re-attaches to the
   * next holder of the control socket (or finishes alone). Their sessions go on.
   */
  release(): void {
    for (const p of this.#members) p.abandon();
  }

  #notify(): void {
    for (const changed of [...this.#watchers]) changed();
  }
}
