import type { ListenerConfig, ServiceConfig } from '../../config/index.ts';
import type { PoolView, ThreadError } from '../../core/index.ts';
import type { ListenerStats } from '../listener-stats.ts';
import type { ListenerNote } from '../listener.ts';

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

/** From the agent's thread to a worker: a step to answer, or a sibling's note to apply (unanswered). */
export type ToListenerWorker =
  { type: 'command'; id: number; command: ListenerCommand } | { type: 'note'; note: ListenerNote };

/** From a worker to the agent's thread. */
export type FromListenerWorker =
  | { type: 'done'; id: number; value: number }
  | { type: 'failed'; id: number; error: ThreadError }
  /** Sent synchronously with every change (the listener's `onChange`), in order. */
  | { type: 'stats'; stats: ListenerStats; urgent: boolean }
  | { type: 'error'; error: { code: string; message: string } }
  /** The listener's `onNote`: for the other threads, and listeners elsewhere. */
  | { type: 'note'; note: ListenerNote };
