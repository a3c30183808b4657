import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Lease, PoolKeys, Store } from '../store/index.ts';

/** How often a lease that could not be taken is tried again. */
const retryMs = 1000;

export interface LeaseHolderOptions {
  member: string;
  store: Store;
  keys: PoolKeys;
  logger: Logger;
  ttlMs: number;
}

/**
 * Holds the member's agent key on a lease, so the pool knows the agent is alive (SPEC §6): readers count
 * a member whose key is gone as down. A lost lease (expired, or revoked elsewhere) is taken again.
 */
export class LeaseHolder {
  private readonly options: LeaseHolderOptions;
  private lease: Lease | null = null;
  private stopped = false;

  constructor(options: LeaseHolderOptions) {
    this.options = options;
  }

  /** Takes the lease and writes the agent key on it; does nothing while one is held. */
  async hold(): Promise<void> {
    if (this.lease || this.stopped) return;
    const { store, keys, member, ttlMs } = this.options;
    const lease = await store.grantLease(ttlMs);
    const info = { pid: process.pid, host: hostname(), startedAt: Date.now() };
    await store.put(keys.agent(member), JSON.stringify(info), { lease });
    this.lease = lease;
    lease.onLost(() => {
      if (this.stopped) return;
      this.lease = null;
      this.options.logger.warn({ member, code: 'EBB_LEASE_LOST' }, 'agent lease lost; taking a new one');
      this.retry();
    });
  }

  /** Revoking the lease removes the agent key; readers of the store announce agent.down from that. */
  async release(): Promise<void> {
    this.stopped = true;
    await this.lease?.revoke().catch(() => {});
    this.lease = null;
  }

  private retry(): void {
    this.hold().catch(() => {
      if (this.stopped) return;
      setTimeout(() => this.retry(), retryMs).unref();
    });
  }
}
