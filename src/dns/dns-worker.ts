/**
 * A DNS worker thread (see `DnsWorkerPool`): one `DnsServer` on the shared port (SO_REUSEPORT), answering
 * from the last view the pool posted, reporting its counters once a second and when it closes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toThreadError, type PoolView } from '../core/index.ts';
import { DnsServer, type DnsLogger } from './dns-server.ts';
import type { DnsWorkerData, FromDnsWorker, ToDnsWorker } from './dns-worker-messages.ts';

const STATS_INTERVAL_MS = 1000;

const port = parentPort!;
const post = (message: FromDnsWorker) => port.postMessage(message);
const data = workerData as DnsWorkerData;
let view: PoolView = data.view;

// Logged objects cross the thread boundary by structured clone: errors are passed as their message.
const plain = (obj: object): Record<string, unknown> =>
  Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, v instanceof Error ? v.message : v]));
const logger: DnsLogger = {
  debug: (obj, msg = '') => post({ type: 'log', level: 'debug', obj: plain(obj), msg }),
  info: (obj, msg = '') => post({ type: 'log', level: 'info', obj: plain(obj), msg }),
  warn: (obj, msg = '') => post({ type: 'log', level: 'warn', obj: plain(obj), msg }),
};

const server = new DnsServer({ ...data, reusePort: true, view: () => view, logger });
const timer = setInterval(() => post({ type: 'stats', stats: server.stats() }), STATS_INTERVAL_MS);
timer.unref();

port.on('message', (message: ToDnsWorker) => {
  if (message.type === 'view') {
    view = message.view;
    post({ type: 'viewed', seq: message.seq });
  } else if (message.type === 'close') {
    clearInterval(timer);
    void server.close().then(() => {
      post({ type: 'closed', stats: server.stats() });
      port.close();
    });
  }
});

server.start().then(
  () => post({ type: 'listening', port: server.port }),
  (err: unknown) => {
    clearInterval(timer);
    post({ type: 'failed', error: toThreadError(err, 'EBB_DNS_WORKER') });
    port.close();
  },
);
