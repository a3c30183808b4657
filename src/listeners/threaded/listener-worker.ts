/**
 * A listener worker thread (see `ThreadedListener`): one listener of the kind its config names, bound
 * with SO_REUSEPORT beside its siblings, driven step by step by the agent's thread. Every change of its
 * counts goes back at once as a whole `stats()` snapshot, so the agent's sums are exact.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toThreadError } from '../../core/index.ts';
import { createListener } from '../create-listener.ts';
import type { Listener } from '../listener.ts';
import type {
  FromListenerWorker,
  ListenerCommand,
  ListenerWorkerData,
  ToListenerWorker,
} from './threaded-messages.ts';

const port = parentPort!;
const data = workerData as ListenerWorkerData;
const post = (message: FromListenerWorker) => port.postMessage(message);

const listener: Listener = createListener(
  data.address,
  data.config,
  {
    onChange: (urgent) => post({ type: 'stats', stats: listener.stats(), urgent }),
    onError: (err) => post({ type: 'error', error: { code: err.code, message: err.message } }),
    onNote: (note) => post({ type: 'note', note }),
  },
  { member: data.member, service: data.service, view: () => data.view, reusePort: true },
);
let closing: Promise<void> | null = null;

async function run(command: ListenerCommand): Promise<number> {
  switch (command) {
    case 'bind':
    case 'bindRefusing':
      await listener.open(command === 'bindRefusing');
      return 0;
    case 'refuse':
      await listener.refuse();
      return 0;
    case 'accept':
      await listener.accept();
      return 0;
    case 'stopListening':
      // Done once this thread takes no new session (its shared socket is closed, SPEC §13); the close
      // goes on until its sessions have ended, and `release` waits for that.
      if (listener.state !== 'closed') {
        closing = listener.close();
        await listener.closeToNew();
      }
      return 0;
    case 'endSessions':
      return listener.endSessions();
    case 'release':
      await closing;
      return 0;
  }
}

port.on('message', (message: ToListenerWorker) => {
  if (message.type === 'note') return listener.applyNote?.(message.note);
  run(message.command).then(
    (value) => {
      post({ type: 'done', id: message.id, value });
      if (message.command === 'release') port.close();
    },
    (err: unknown) =>
      post({ type: 'failed', id: message.id, error: toThreadError(err, 'EBB_LISTENER_WORKER') }),
  );
});
