import type { Listener } from './listener.ts';

/** The listener's `stats()` as the session tallies the assertions read (each read takes a new snapshot). */
export function countsOf(l: Listener) {
  return {
    get opened() {
      return l.stats().accepted;
    },
    get closed() {
      const s = l.stats();
      return s.accepted - s.sessions;
    },
    get forced() {
      return l.stats().forced;
    },
    get upstreamFailed() {
      return l.stats().upstreamFailures;
    },
  };
}
