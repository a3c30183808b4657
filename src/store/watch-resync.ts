import type { KeyValue, WatchEvent, WatchOptions } from './store.ts';

/**
 * Tells one watcher that its watch resumed after a gap (`WatchOptions.onResync`), with every key under
 * its prefix read at `revision`. A watcher without `onResync` gets what can still be known without its
 * state: the current value of every key written after `lastDelivered`, as puts in revision order (deletes
 * made during the gap left no trace). Like `onEvents`, an exception thrown by the callback is swallowed.
 */
export function deliverResync(
  rows: KeyValue[],
  revision: number,
  lastDelivered: number,
  onEvents: (events: WatchEvent[]) => void,
  options: WatchOptions,
): void {
  try {
    if (options.onResync) {
      options.onResync(rows, revision);
      return;
    }
    const events = putsAfter(rows, lastDelivered);
    if (events.length > 0) onEvents(events);
  } catch {
    // A subscriber's bug must not stop the watch.
  }
}

function putsAfter(rows: KeyValue[], lastDelivered: number): WatchEvent[] {
  return rows
    .filter((kv) => kv.modRevision > lastDelivered)
    .sort((a, b) => a.modRevision - b.modRevision || (a.key < b.key ? -1 : 1))
    .map((kv) => ({ type: 'put', key: kv.key, value: kv.value, modRevision: kv.modRevision }));
}
