import type { PoolStatus } from '../control/index.ts';
import { EbbError, ExitCode } from '../core/index.ts';
import { safeText } from './safe-text.ts';

/**
 * The members named by `--member a,b` (all of them without it). An id the pool does not have is exit 2,
 * naming the pool's members, so a typo is not an empty table.
 */
export function selectMembers(status: PoolStatus, wanted: string | undefined, flag: string): PoolStatus {
  if (wanted === undefined) return status;
  const ids = wanted
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  const known = status.members.map((m) => m.id);
  const unknown = ids.filter((id) => !known.includes(id));
  if (ids.length === 0 || unknown.length > 0) {
    const what = ids.length === 0 ? 'names no member' : `"${safeText(unknown.join(', '))}" is not a member`;
    throw new EbbError('EBB_USAGE', `${flag}: ${what} of pool ${status.pool.name} (${known.join(', ')})`, {
      exitCode: ExitCode.usage,
    });
  }
  return { ...status, members: status.members.filter((m) => ids.includes(m.id)) };
}

export interface WatchOptions {
  read(): Promise<PoolStatus>;
  render(status: PoolStatus): string;
  /** One JSON line per change instead of a table. */
  json: boolean;
  /** A terminal: the screen is redrawn in place; otherwise a frame is printed only when the pool changed. */
  tty: boolean;
  intervalMs: number;
  write(text: string): void;
  signal: AbortSignal;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * `ebb status --watch`: polls until the signal aborts (Ctrl-C). An API that stops answering is said on
 * the screen and waited for, as a drain does; a usage error (an unknown --member) ends the watch.
 */
export async function watchStatus(options: WatchOptions): Promise<void> {
  const sleep = options.sleep ?? abortableSleep;
  const now = options.now ?? Date.now;
  let last = '';
  while (!options.signal.aborted) {
    let frame: string;
    let key: string;
    try {
      const status = await options.read();
      key = JSON.stringify(status);
      frame = options.json ? JSON.stringify(status) : options.render(status);
    } catch (err) {
      if (!(err instanceof EbbError) || err.exitCode === ExitCode.usage) throw err;
      key = `error:${err.code}`;
      frame = options.json
        ? JSON.stringify({ error: err.toJSON() })
        : `ebb: ${safeText(err.message)}; retrying every ${options.intervalMs} ms`;
    }
    if (options.tty && !options.json) {
      // Home and clear, then the frame: the table is redrawn in place, with when it was read.
      const at = new Date(now()).toISOString().slice(11, 19);
      options.write(`\x1b[H\x1b[2J${frame}\n\nevery ${options.intervalMs} ms · ${at} UTC · Ctrl-C stops\n`);
    } else if (key !== last) {
      options.write(options.json ? `${frame}\n` : `${last === '' ? '' : '\n'}${frame}\n`);
    }
    last = key;
    await sleep(options.intervalMs, options.signal);
  }
}
