/**
 * Runs the `ebb` command (bin/ebb.js, same arguments) with one referenced timer that keeps the event
 * loop alive until SIGTERM/SIGINT.
 *
 * Why: `ebb agent` on a SQLite store exits by itself (code 13, "unsettled top-level await") as soon as
 * every service of its member is paused or stopped. Its only referenced handles are the listening sockets;
 * the store's poll, lease and retry timers are unref'd, and `runUntilSignal()` in
 * src/cli/server-commands.ts waits on a promise that only signal handlers settle, which does not keep Node
 * alive. The agent is then gone, its lease lapses, and a later `resume` is never applied. Until that is
 * fixed in src/, the benchmarks start `ebb agent` through this file so they measure Ebb, not that exit.
 */
const keepAlive = setInterval(() => {}, 1 << 30);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  // `ebb` has its own handler for the signal and shuts down; this only lets the loop empty afterwards.
  process.once(signal, () => clearInterval(keepAlive));
}
const entry: string = '../../bin/ebb.js'; // not a literal: bin/ is plain JS without types
await import(entry);
