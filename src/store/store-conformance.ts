import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store, WatchEvent } from './store.ts';

/**
 * The behaviour every store must have (SPEC §6). `backend.open()` returns a new client of the same shared
 * state each time, so tests can play several processes.
 */
export interface StoreBackend {
  open(): Promise<Store>;
  cleanup(): Promise<void>;
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
  });
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
