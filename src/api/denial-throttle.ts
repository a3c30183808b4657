/**
 * Bounds how many refused requests are written to the audit log. Each one is a store write, and a page
 * in the operator's browser can send refused requests in a loop: unbounded, they would fill the store
 * (etcd's quota is the whole pool's) with audit records. Past `perSecond` in one second, refusals are
 * counted instead, and the next record written says how many were left out.
 */
export class DenialThrottle {
  private readonly perSecond: number;
  private readonly now: () => number;
  private windowStart = -Infinity;
  private written = 0;
  private skipped = 0;

  constructor(perSecond = 20, now: () => number = Date.now) {
    this.perSecond = perSecond;
    this.now = now;
  }

  /** The detail to record for this refusal, or null to leave it out (it is counted). */
  admit(detail: string): string | null {
    const now = this.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.written = 0;
    }
    if (this.written >= this.perSecond) {
      this.skipped++;
      return null;
    }
    this.written++;
    if (this.skipped === 0) return detail;
    const note = `${detail} (and ${this.skipped} more denied request(s) before it not recorded: over ${this.perSecond}/s)`;
    this.skipped = 0;
    return note;
  }
}
