import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { runStoreConformance } from './store-conformance.ts';
import { SqliteStore } from './sqlite-store.ts';

runStoreConformance('sqlite (one file, several connections)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-sqlite-'));
  const path = join(dir, 'state.db');
  // Plays a process that trims the change log down to its last record.
  const trimmer = new SqliteStore(path, { changeHistory: 0 });
  return {
    open: async () => new SqliteStore(path),
    openLagging: async () => {
      const store = new SqliteStore(path);
      return {
        store,
        // SqliteStore calls complete without waiting on a timer, so `store` (which looks for other
        // connections' commits on a 10 ms timer) cannot run between the writes and the trim: it is a
        // process that was stalled while others wrote and trimmed.
        outrun: async (writes) => {
          await writes();
          trimmer.trimChangeLog();
        },
      };
    },
    cleanup: async () => {
      await trimmer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-sqlite-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  // In one thread SqliteStore's reads never interleave with its writes; only another thread or process
  // can commit between two reads, so this writer runs in a worker thread. Reads not wrapped in one
  // transaction fail this in about one snapshot of a thousand.
  it('a snapshot is one read transaction: a commit by another thread never lands between its prefixes', async () => {
    const path = join(dir, 'snapshot.db');
    const store = new SqliteStore(path);
    const writer = new Worker(writerSource, {
      eval: true,
      workerData: { url: new URL('./sqlite-store.ts', import.meta.url).href, path, commits: 3000 },
    });
    const finished = new Promise<void>((resolve, reject) => {
      writer.on('message', (m) => m === 'done' && resolve());
      writer.once('error', reject);
    });
    let writing = true;
    void finished.finally(() => (writing = false)).catch(() => {});
    let snapshots = 0;
    try {
      while (writing) {
        const snap = await store.snapshot(['a/', 'b/']);
        const [a, b] = snap.rows.map((rows) => rows[0]?.value);
        assert.equal(a, b, `a/x and b/x differ in the snapshot at revision ${snap.revision}`);
        // Let the worker's messages in now and then.
        if (++snapshots % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await finished;
    } finally {
      await writer.terminate();
      await store.close();
    }
    assert.ok(snapshots >= 1000, `only ${snapshots} snapshots overlapped the writes`);
  });
});

/** Commits `commits` transactions that each set a/x and b/x to one value, then posts 'done'. */
const writerSource = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.url).then(async ({ SqliteStore }) => {
  const store = new SqliteStore(workerData.path);
  for (let i = 0; i < workerData.commits; i++) {
    const value = String(i);
    await store.txn([], [{ type: 'put', key: 'a/x', value }, { type: 'put', key: 'b/x', value }]);
  }
  await store.close();
  parentPort.postMessage('done');
});
`;

describe('SqliteStore identity', () => {
  it('a new file is a new store: another identity (issue 16, fault 4)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebb-sqlite-id-'));
    try {
      const path = join(dir, 'state.db');
      const first = new SqliteStore(path);
      const before = await first.identity();
      await first.close();
      const reopened = new SqliteStore(path);
      assert.equal(await reopened.identity(), before, 'kept across opens');
      await reopened.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
      const wiped = new SqliteStore(path);
      assert.notEqual(await wiped.identity(), before);
      await wiped.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
