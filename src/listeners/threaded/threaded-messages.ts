import type { ListenerConfig, ServiceConfig } from '../../config/index.ts';
import type { PoolView, ThreadError } from '../../core/index.ts';
import type { ListenerStats } from '../listener-stats.ts';

/** What a listener worker thread is started with (`workerData`). */
export interface ListenerWorkerData {
  address: string;
  config: ListenerConfig;
  member: string;
  service: ServiceConfig;
  view: PoolView;
}

/** A command of the `ListenerDriver` steps, numbered so its answer finds it. */
export type ListenerCommand =
  'bind' | 'bindRefusing' | 'refuse' | 'accept' | 'stopListening' | 'endSessions' | 'release';

/** From the agent's thread to a worker. */
export interface ToListenerWorker {
  type: 'command';
  id: number;
  command: ListenerCommand;
}

/** From a worker to the agent's thread. */
export type FromListenerWorker =
  | { type: 'done'; id: number; value: number }
  | { type: 'failed'; id: number; error: ThreadError }
  /** Sent synchronously with every change (the listener's `onChange`), in order. */
  | { type: 'stats'; stats: ListenerStats; urgent: boolean }
  | { type: 'error'; error: { code: string; message: string } };
