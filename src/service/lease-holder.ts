import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { EbbError, ExitCode } from '../core/index.ts';
import type { Lease, PoolKeys, Store } from '../store/index.ts';

/** How often a lease that could not be taken is tried again. */
const retryMs = 1000;
/** How often a claim looks again while another holder's key is still there. */
const claimPollMs = 250;

export interface LeaseHolderOptions {
  member: string;
  store: Store;
  keys: PoolKeys;
  logger: Logger;
  ttlMs: number;
  /**
   * A process of this host that this one replaces (a hand-off, SPEC §13): its key is taken over in one
   * compare-and-set, moved onto this process's lease, so the member never looks down in between.
   */
  takeOverFrom?: number;
}

/** What an agent writes under its key: who holds the member. */
export interface AgentInfo {
  pid: number;
  host: string;
  startedAt: number;
}

/**
 * Another live process holds the member (its agent key is on a lease that keeps being renewed): a
 * second agent for a member refuses to start rather than fight over its status (operator audit #1).
 * Replacing a running agent is a hand-off (SPEC §13), which takes the key over instead.
 */
export class MemberHeldError extends EbbError {
  constructor(member: string, holder: AgentInfo) {
    super(
      'EBB_MEMBER_HELD',
      `member ${member} is held by another agent: pid ${holder.pid} on ${holder.host}, since ` +
        `${new Date(holder.startedAt).toISOString()}; stop that process first (one agent per member)`,
      { httpStatus: 409, exitCode: ExitCode.error, details: { member, holder } },
    );
  }
}

/**
 * Holds the member's agent key on a lease, so the pool knows the agent is alive (SPEC §6): readers count
 * a member whose key is gone as down. The key is created only if absent (one compare-and-set), so two
 * processes never both hold a member; a lost lease (expired, or revoked elsewhere) is taken again.
 */
export class LeaseHolder {
  private readonly options: LeaseHolderOptions;
  private lease: Lease | null = null;
  private stopped = false;
  /** Handed over to a successor, which holds the key now: this process writes nothing more. */
  private yielded = false;

  constructor(options: LeaseHolderOptions) {
    this.options = options;
  }

  get held(): boolean {
    return this.lease !== null && !this.yielded;
  }

  /**
   * A successor takes the key over (SPEC §13): from now on `held` is false, so this process writes no
   * status; the lease is kept alive until `release()`, and revoking it then leaves the key, which is on
   * the successor's lease by then (or, if it never took it, goes with this one as at any stop).
   */
  yieldToSuccessor(): void {
    this.yielded = true;
  }

  /**
   * Takes the member. A key left by a holder that is gone (its lease not renewed) lapses within one TTL,
   * or at once when it names a process of this host that no longer runs; a key still renewed after that
   * belongs to a live holder: `MemberHeldError`. Does nothing while the lease is held.
   */
  async claim(): Promise<void> {
    const giveUpAt = Date.now() + this.options.ttlMs * 1.5 + 1000;
    let told = false;
    while (!this.lease && !this.stopped) {
      const holder = await this.tryCreate();
      if (!holder) return;
      if (await this.takeOver(holder)) return;
      if (await this.removeIfDead(holder)) continue;
      if (Date.now() >= giveUpAt) throw new MemberHeldError(this.options.member, holder.info);
      if (!told) {
        told = true;
        this.options.logger.info(
          { member: this.options.member, holderPid: holder.info.pid, holderHost: holder.info.host },
          'another agent holds this member; waiting for its lease to lapse',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, claimPollMs));
    }
  }

  /** Revoking the lease removes the agent key; readers of the store announce agent.down from that. */
  async release(): Promise<void> {
    this.stopped = true;
    // A revoke that fails lets the lease run out by its TTL instead: the same end, a little later.
    await this.lease?.revoke().catch(() => {});
    this.lease = null;
  }

  /**
   * The key of the process this one replaces, moved onto a lease of ours in one compare-and-set: true
   * once held. Any other holder is not ours to take.
   */
  private async takeOver(holder: { info: AgentInfo; modRevision: number }): Promise<boolean> {
    const from = this.options.takeOverFrom;
    if (from === undefined || holder.info.pid !== from || holder.info.host !== hostname()) return false;
    const moved = await this.tryCreate(holder.modRevision);
    if (moved) return false;
    this.options.logger.info(
      { member: this.options.member, fromPid: from },
      'took the member over from the process this one replaces',
    );
    return true;
  }

  /**
   * Puts the agent key on a new lease if its revision is `expected` (0: absent); otherwise returns who
   * holds it.
   */
  private async tryCreate(expected = 0): Promise<{ info: AgentInfo; modRevision: number } | null> {
    const { store, keys, member, ttlMs } = this.options;
    const key = keys.agent(member);
    const lease = await store.grantLease(ttlMs);
    const info: AgentInfo = { pid: process.pid, host: hostname(), startedAt: Date.now() };
    const created = await store
      .txn([{ key, modRevision: expected }], [{ type: 'put', key, value: JSON.stringify(info), lease }])
      .catch(async (err: unknown) => {
        await lease.revoke().catch(() => {});
        throw err;
      });
    if (created.succeeded) {
      this.lease = lease;
      lease.onLost(() => {
        if (this.stopped || this.yielded) return;
        this.lease = null;
        this.options.logger.warn({ member, code: 'EBB_LEASE_LOST' }, 'agent lease lost; taking a new one');
        this.retry();
      });
      return null;
    }
    await lease.revoke().catch(() => {});
    const row = await store.get(key);
    if (!row) return this.tryCreate();
    return { info: parseInfo(row.value), modRevision: row.modRevision };
  }

  /** A key naming a process of this host that is gone (kill -9, a crash) is removed at once. */
  private async removeIfDead(holder: { info: AgentInfo; modRevision: number }): Promise<boolean> {
    if (holder.info.host !== hostname() || isAlive(holder.info.pid)) return false;
    const key = this.options.keys.agent(this.options.member);
    const removed = await this.options.store.txn(
      [{ key, modRevision: holder.modRevision }],
      [{ type: 'delete', key }],
    );
    return removed.succeeded;
  }

  private retry(): void {
    this.claim().catch((err: unknown) => {
      if (this.stopped) return;
      if (err instanceof MemberHeldError) {
        // Someone took the member while our lease was lost: say so loudly, keep trying.
        this.options.logger.error(
          { member: this.options.member, code: err.code, err: err.message },
          err.message,
        );
      }
      setTimeout(() => this.retry(), retryMs).unref();
    });
  }
}

function parseInfo(text: string): AgentInfo {
  try {
    const v = JSON.parse(text) as Partial<AgentInfo>;
    return { pid: Number(v.pid) || 0, host: String(v.host ?? '?'), startedAt: Number(v.startedAt) || 0 };
  } catch {
    return { pid: 0, host: '?', startedAt: 0 };
  }
}

/** Whether a process of this host runs (signal 0 checks without sending anything). */
function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
