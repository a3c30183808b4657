import type { PoolView } from '../core/index.ts';

/**
 * The SOA serial (RFC 1035 §3.3.13): Unix seconds when the zone's content was last seen to change, and
 * always one more than before on a change within the same second (RFC 1982 arithmetic, no wrap in
 * practice). Nothing transfers this zone, so the serial only tells an observer that answers changed.
 *
 * It is computed only when an SOA is sent, so ordinary queries do not pay for the fingerprint.
 */
export class ZoneSerial {
  #serial = 0;
  #fingerprint: string | null = null;
  #lastView: PoolView | null = null;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  current(view: PoolView): number {
    if (view === this.#lastView) return this.#serial;
    this.#lastView = view;
    const fingerprint = viewFingerprint(view);
    if (fingerprint !== this.#fingerprint) {
      this.#fingerprint = fingerprint;
      this.#serial = Math.max(this.#serial + 1, Math.floor(this.#now() / 1000)) >>> 0;
    }
    return this.#serial;
  }
}

/** Everything in a view that changes an answer, and nothing else (sessions do not). */
export function viewFingerprint(view: PoolView): string {
  return JSON.stringify([
    view.fqdn.toLowerCase(),
    view.dnsTtl,
    view.members.map((m) => [
      m.id,
      m.addresses,
      m.agentUp,
      m.services.map((s) => [s.id, s.accepting, s.listeners.map((l) => [l.transport, l.port])]),
    ]),
  ]);
}
