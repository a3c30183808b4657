import type { PoolView, ThreadError } from '../core/index.ts';
import type { DnsServerOptions, DnsServerStats } from './dns-server.ts';

/** What a DNS worker thread is started with (`workerData`): its server's options but the view. */
export type DnsWorkerData = Omit<DnsServerOptions, 'view' | 'logger'> & { view: PoolView };

/** From the pool to a worker. */
export type ToDnsWorker = { type: 'view'; view: PoolView; seq: number } | { type: 'close' };

/** From a worker to the pool. */
export type FromDnsWorker =
  | { type: 'listening'; port: number }
  | { type: 'failed'; error: ThreadError }
  | { type: 'stats'; stats: DnsServerStats }
  /** The view numbered `seq` is the one answers come from now. */
  | { type: 'viewed'; seq: number }
  | { type: 'log'; level: 'debug' | 'info' | 'warn'; obj: Record<string, unknown>; msg: string }
  | { type: 'closed'; stats: DnsServerStats };
