import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KeyValue, Store, WatchEvent } from './store.ts';

/**
 * The behaviour every store must have (SPEC §6). `backend.open()` returns a new client of the same shared
 * state each time, so tests can play several processes.
 */
export interface StoreBackend {
  open(): Promise<Store>;
  /** A client whose watches can be made to lose their place; the suite closes `store`. */
  openLagging(): Promise<LaggingClient>;
  cleanup(): Promise<void>;
}

export interface LaggingClient {
  store: Store;
  /**
   * Runs `writes` (made through other clients) while `store`'s watches cannot follow, then discards the
   * history they would resume from (etcd: compaction; SQLite: a trimmed change log).
   */
  outrun(writes: () => Promise<void>): Promise<void>;
}

export function runStoreConformance(name: string, makeBackend: () => Promise<StoreBackend>): void {
  describe(`store conformance: ${name}`, () => {
    let backend: StoreBackend;
    const opened: Store[] = [];
    let testNo = 0;
    const open = async () => {
      const store = await backend.open();
      opened.push(store);
      return store;
    };
    const prefix = () => `conformance/${process.pid}/${Date.now()}/${++testNo}/`;

    before(async () => {
      backend = await makeBackend();
    });
    after(async () => {
      for (const store of opened) await store.close().catch(() => {});
      await backend.cleanup();
    });

    it('has one identity, the same for every client, outside every pool prefix (issue 16, fault 4)', async () => {
      const [a, b] = [await open(), await open()];
      const [idA, idB] = await Promise.all([a.identity(), b.identity()]);
      assert.match(idA, /^[0-9a-f-]{36}$/);
      assert.equal(idB, idA);
      assert.equal(await a.identity(), idA, 'never rewritten');
      assert.deepEqual(await a.list('ebb/conformance/'), []);
    });

    it('puts, gets, lists by prefix in key order, and deletes', async () => {
      const store = await open();
      const p = prefix();
      const r1 = await store.put(`${p}b`, 'two');
      const r2 = await store.put(`${p}a`, 'one');
      await store.put(`${p}x/c`, 'three');
      await store.put(`${p.slice(0, -1)}z`, 'outside');
      assert.ok(r2 > r1, 'revisions increase');
      assert.equal((await store.get(`${p}a`))?.value, 'one');
      assert.equal((await store.get(`${p}a`))?.modRevision, r2);
      assert.deepEqual(
        (await store.list(p)).map((kv) => kv.key),
        [`${p}a`, `${p}b`, `${p}x/c`],
      );
      assert.equal(await store.delete(`${p}a`), true);
      assert.equal(await store.delete(`${p}a`), false);
      assert.equal(await store.get(`${p}a`), undefined);
    });

    it('applies a transaction only when every compare holds', async () => {
      const store = await open();
      const p = prefix();
      const rev = await store.put(`${p}k`, 'v1');
      const stale = await store.txn(
        [{ key: `${p}k`, modRevision: rev - 1 }],
        [{ type: 'put', key: `${p}k`, value: 'no' }],
      );
      assert.equal(stale.succeeded, false);
      assert.equal((await store.get(`${p}k`))?.value, 'v1');
      const fresh = await store.txn(
        [
          { key: `${p}k`, modRevision: rev },
          { key: `${p}absent`, modRevision: 0 },
        ],
        [
          { type: 'put', key: `${p}k`, value: 'v2' },
          { type: 'put', key: `${p}other`, value: 'o' },
        ],
      );
      assert.equal(fresh.succeeded, true);
      assert.equal((await store.get(`${p}k`))?.value, 'v2');
      assert.equal((await store.get(`${p}other`))?.value, 'o');
      // As in etcd, every key one transaction writes carries that transaction's revision.
      assert.equal((await store.get(`${p}k`))?.modRevision, fresh.revision);
      assert.equal((await store.get(`${p}other`))?.modRevision, fresh.revision);
      const exists = await store.txn([{ key: `${p}k`, modRevision: 0 }], [{ type: 'delete', key: `${p}k` }]);
      assert.equal(exists.succeeded, false, 'modRevision 0 means the key must not exist');
    });

    it('compare-and-set is atomic across clients: concurrent increments lose nothing', async () => {
      const clients = [await open(), await open(), await open()];
      const key = `${prefix()}counter`;
      await clients[0]!.put(key, '0');
      const perClient = 15;
      let conflicts = 0;
      await Promise.all(
        clients.map(async (client) => {
          for (let i = 0; i < perClient; i++) {
            for (;;) {
              const current = (await client.get(key))!;
              const next = String(Number(current.value) + 1);
              const result = await client.txn(
                [{ key, modRevision: current.modRevision }],
                [{ type: 'put', key, value: next }],
              );
              if (result.succeeded) break;
              conflicts++;
            }
          }
        }),
      );
      assert.equal((await clients[0]!.get(key))?.value, String(clients.length * perClient));
      assert.ok(conflicts >= 0);
    });

    it('a watch sees puts and deletes made by another client, in order', async () => {
      const watching = await open();
      const writing = await open();
      const p = prefix();
      const seen: WatchEvent[] = [];
      const watcher = await watching.watch(p, (events) => seen.push(...events));
      await writing.put(`${p}a`, '1');
      await writing.put(`${p}a`, '2');
      await writing.put(`${p.slice(0, -1)}-elsewhere`, 'x');
      await writing.delete(`${p}a`);
      await waitFor(() => seen.length >= 3);
      watcher.close();
      assert.deepEqual(
        seen.map((e) => [e.type, e.key, e.value]),
        [
          ['put', `${p}a`, '1'],
          ['put', `${p}a`, '2'],
          ['delete', `${p}a`, null],
        ],
      );
      assert.ok(seen[0]!.modRevision < seen[1]!.modRevision && seen[1]!.modRevision < seen[2]!.modRevision);
    });

    it('keys on a lease vanish when its holder stops renewing, and watchers are told', async () => {
      const holder = await open();
      const observer = await open();
      const p = prefix();
      const lease = await holder.grantLease(1000);
      await holder.put(`${p}alive`, 'yes', { lease });
      await holder.put(`${p}durable`, 'yes');
      const deletes: string[] = [];
      await observer.watch(p, (events) =>
        deletes.push(...events.filter((e) => e.type === 'delete').map((e) => e.key)),
      );
      // The lease outlives several TTLs while its holder renews it.
      await sleep(1500);
      assert.equal((await observer.get(`${p}alive`))?.value, 'yes');
      await holder.close(); // a crash: no revoke
      await waitFor(() => deletes.includes(`${p}alive`), 8000);
      assert.equal(await observer.get(`${p}alive`), undefined);
      assert.equal((await observer.get(`${p}durable`))?.value, 'yes');
    });

    it('revoking a lease deletes its keys at once', async () => {
      const store = await open();
      const p = prefix();
      const lease = await store.grantLease(5000);
      await store.put(`${p}k`, 'v', { lease });
      await lease.revoke();
      assert.equal(await store.get(`${p}k`), undefined);
    });

    it('a snapshot lists several prefixes, each in key order, at the current revision', async () => {
      const store = await open();
      const p = prefix();
      await store.put(`${p}b/2`, 'b2');
      await store.put(`${p}a/1`, 'a1');
      const last = await store.put(`${p}b/1`, 'b1');
      const snap = await store.snapshot([`${p}b/`, `${p}none/`, `${p}a/`]);
      assert.deepEqual(
        snap.rows.map((rows) => rows.map((kv) => [kv.key, kv.value])),
        [
          [
            [`${p}b/1`, 'b1'],
            [`${p}b/2`, 'b2'],
          ],
          [],
          [[`${p}a/1`, 'a1']],
        ],
      );
      assert.ok(snap.revision >= last, `revision ${snap.revision} is before the last write ${last}`);
      assert.deepEqual((await store.snapshot([])).rows, []);
    });

    it('a snapshot reads every prefix at one revision while other clients commit', async () => {
      const reader = await open();
      const writers = [await open(), await open()];
      const p = prefix();
      const prefixes = [`${p}a/`, `${p}b/`];
      // Each commit sets a/x and b/x to one new value: any read at one revision sees them equal.
      let writing = true;
      const commits = writers.map(async (writer, w) => {
        for (let i = 0; i < 150; i++) {
          const value = `${w}-${i}`;
          await writer.txn(
            [],
            prefixes.map((pre) => ({ type: 'put' as const, key: `${pre}x`, value })),
          );
        }
      });
      const done = Promise.all(commits).finally(() => (writing = false));
      let snapshots = 0;
      let lastRevision = 0;
      while (writing) {
        const snap = await reader.snapshot(prefixes);
        const [a, b] = snap.rows.map((rows) => rows[0]);
        assert.equal(a?.value, b?.value, `a/x and b/x differ in the snapshot at revision ${snap.revision}`);
        for (const kv of [a, b]) {
          if (kv)
            assert.ok(kv.modRevision <= snap.revision, `modRevision ${kv.modRevision} > ${snap.revision}`);
        }
        assert.ok(snap.revision >= lastRevision, 'snapshot revisions never go back');
        lastRevision = snap.revision;
        snapshots++;
      }
      await done;
      assert.ok(snapshots >= 20, `only ${snapshots} snapshots overlapped the writes`);
    });

    // Last: on etcd it compacts the cluster's history.
    it('a watch that cannot resume without a gap resyncs: the contents at one revision, then what follows', async () => {
      const lagging = await backend.openLagging();
      opened.push(lagging.store);
      const writing = await open();
      const p = prefix();
      await writing.put(`${p}gone`, '0');
      await writing.put(`${p}kept`, '0');
      type Entry = WatchEvent | { resync: KeyValue[]; revision: number };
      const log: Entry[] = [];
      const plain: WatchEvent[] = [];
      const watchers = [
        await lagging.store.watch(p, (events) => log.push(...events), {
          onResync: (rows, revision) => log.push({ resync: rows, revision }),
        }),
        await lagging.store.watch(p, (events) => plain.push(...events)),
      ];
      await writing.put(`${p}kept`, '1');
      await waitFor(() => log.length === 1 && plain.length === 1);

      await lagging.outrun(async () => {
        await writing.delete(`${p}gone`);
        await writing.put(`${p}kept`, '2');
        await writing.put(`${p}new`, '3');
      });
      await waitFor(() => log.length === 2, 15_000);
      await writing.put(`${p}after`, '4');
      await waitFor(() => log.length === 3 && plain.length === 4);
      for (const watcher of watchers) watcher.close();

      const [first, resync, next] = log as [WatchEvent, Entry, WatchEvent];
      assert.deepEqual(shape(first), ['put', `${p}kept`, '1']);
      assert.ok('resync' in resync, 'the second call is the resync');
      assert.deepEqual(
        resync.resync.map((kv) => [kv.key, kv.value]),
        [
          [`${p}kept`, '2'],
          [`${p}new`, '3'],
        ],
      );
      for (const kv of resync.resync) assert.ok(kv.modRevision <= resync.revision);
      assert.ok(first.modRevision < resync.revision);
      assert.deepEqual(shape(next), ['put', `${p}after`, '4']);
      assert.ok(next.modRevision > resync.revision, 'events resume after the resync revision');
      // Without onResync: the current value of every key written in the gap, as puts in revision order;
      // the delete in the gap is not known.
      assert.deepEqual(plain.map(shape), [
        ['put', `${p}kept`, '1'],
        ['put', `${p}kept`, '2'],
        ['put', `${p}new`, '3'],
        ['put', `${p}after`, '4'],
      ]);
      for (let i = 1; i < plain.length; i++) assert.ok(plain[i]!.modRevision > plain[i - 1]!.modRevision);
    });
  });
}

function shape(event: WatchEvent): [string, string, string | null] {
  return [event.type, event.key, event.value];
}

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
