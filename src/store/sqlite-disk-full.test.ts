import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteStore } from './sqlite-store.ts';
import type { WatchEvent } from './store.ts';

/**
 * A full disk, for real: the store lives on a small tmpfs mounted for this test (needs root), and the disk
 * is filled by another file, as a log or a core dump fills it in production (issue 16, fault 5).
 */
describe('SqliteStore on a full disk', () => {
  const mountPoint = mkdtempSync('/tmp/ebb-disk-full-');
  let mounted = false;

  before(() => {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'pipe' });
      mounted = true;
    } catch {
      // Not root: the test below is skipped.
    }
  });
  after(() => {
    if (mounted) execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('reports "disk is full" (not the failed rollback) and recovers by itself once space is back', async (t) => {
    if (!mounted) return t.skip('mounting a tmpfs needs root');
    const store = new SqliteStore(join(mountPoint, 'state.db'));
    const seen: WatchEvent[] = [];
    const other = new SqliteStore(join(mountPoint, 'state.db'));
    try {
      await store.put('ebb/p/intent/fe01/echo', 'paused');
      await other.watch('ebb/p/', (events) => seen.push(...events));
      const filler = join(mountPoint, 'filler');
      fillDisk(filler);

      // SQLite rolls the transaction back by itself on SQLITE_FULL; the ROLLBACK that followed then failed
      // with "cannot rollback - no transaction is active", and that was what callers saw.
      for (let i = 0; i < 3; i++) {
        await assert.rejects(store.put(`ebb/p/status/fe01/s${i}`, 'x'.repeat(4000)), (err: Error) => {
          assert.match(err.message, /database or disk is full/);
          assert.doesNotMatch(err.message, /rollback/i);
          return true;
        });
      }
      assert.equal((await store.get('ebb/p/intent/fe01/echo'))?.value, 'paused', 'reads still work');

      rmSync(filler);
      // No reopen, no restart: the same store takes writes again, and other processes' watchers see them.
      const revision = await store.put('ebb/p/intent/fe01/echo', 'running');
      assert.equal((await store.get('ebb/p/intent/fe01/echo'))?.value, 'running');
      await waitFor(() => seen.some((e) => e.modRevision === revision));
      assert.deepEqual(
        seen.map((e) => e.value),
        ['running'],
      );
    } finally {
      await other.close();
      await store.close();
    }
  });
});

/** Writes until the file system has no space left. */
function fillDisk(path: string): void {
  const chunk = Buffer.alloc(64 * 1024, 1);
  let size = 0;
  for (;;) {
    try {
      writeFileSync(path, chunk, { flag: size === 0 ? 'w' : 'a' });
      size += chunk.length;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      break;
    }
  }
  // Fill the last partial chunk too.
  for (const n of [4096, 512, 1]) {
    for (;;) {
      try {
        writeFileSync(path, Buffer.alloc(n, 1), { flag: 'a' });
      } catch {
        break;
      }
    }
  }
}

async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
}
