import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EbbError, StoreError } from '../core/index.ts';
import { EtcdCluster } from '../../test/harness/etcd-cluster.ts';
import { runStoreConformance } from './store-conformance.ts';
import { EtcdStore } from './etcd-store.ts';
import { openStore } from './open-store.ts';
import type { Store, WatchEvent } from './store.ts';

runStoreConformance('etcd (3-member cluster, a client per open)', async () => {
  const cluster = await EtcdCluster.start();
  const admin = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
  const relays: Relay[] = [];
  return {
    open: async () => new EtcdStore({ endpoints: cluster.endpoints }),
    // A client that reaches one member through a relay: cutting the relay stops its watch stream while
    // the cluster goes on, and compacting the cluster meanwhile leaves the watch nothing to resume from.
    openLagging: async () => {
      const relay = await Relay.start(cluster.endpoints[0]!);
      relays.push(relay);
      return {
        store: new EtcdStore({ endpoints: [relay.endpoint] }),
        outrun: async (writes) => {
          relay.cut();
          await writes();
          const { header } = await admin.kv.range({ key: Buffer.from('compaction') });
          await admin.kv.compact({ revision: header.revision, physical: true });
          relay.restore();
        },
      };
    },
    cleanup: async () => {
      admin.close();
      for (const relay of relays) await relay.close();
      await cluster.stop();
    },
  };
});

describe('EtcdStore against a real 3-member cluster', () => {
  let cluster: EtcdCluster;
  const stores: Store[] = [];
  let testNo = 0;
  const open = async () => {
    const store = await openStore(cluster.spec);
    assert.ok(store instanceof EtcdStore);
    stores.push(store);
    return store;
  };
  const prefix = () => `etcd-test/${process.pid}/${++testNo}/`;

  before(async () => {
    cluster = await EtcdCluster.start();
  });
  after(async () => {
    for (const store of stores) await store.close().catch(() => {});
    await cluster?.stop();
  });

  it('opens etcd:// specs and rejects malformed ones', async () => {
    const store = await open();
    assert.deepEqual(store.endpoints, cluster.endpoints);
    await assert.rejects(openStore('etcd://127.0.0.1'), { code: 'EBB_BAD_CONFIG' });
    await assert.rejects(openStore('nosuch:thing'), (err) => err instanceof EbbError);
  });

  it('reads, writes and transactions go on while the leader is down; leases survive it', async () => {
    const store = await open();
    const p = prefix();
    const lease = await store.grantLease(2000);
    let lost = false;
    lease.onLost(() => (lost = true));
    await store.put(`${p}alive`, 'yes', { lease });
    const first = await store.put(`${p}k`, 'v1');

    const leader = await cluster.leader();
    await cluster.kill(leader);
    const rev = await store.put(`${p}k`, 'v2');
    assert.ok(rev > first);
    assert.equal((await store.get(`${p}k`))?.value, 'v2');
    const ok = await store.txn(
      [{ key: `${p}k`, modRevision: rev }],
      [{ type: 'put', key: `${p}k`, value: 'v3' }],
    );
    assert.equal(ok.succeeded, true);
    const stale = await store.txn([{ key: `${p}k`, modRevision: rev }], [{ type: 'delete', key: `${p}k` }]);
    assert.equal(stale.succeeded, false);
    assert.deepEqual(
      (await store.list(p)).map((kv) => [kv.key, kv.value]),
      [
        [`${p}alive`, 'yes'],
        [`${p}k`, 'v3'],
      ],
    );
    // More than a TTL later the lease is still renewed through the surviving members.
    await sleep(2500);
    assert.equal((await store.get(`${p}alive`))?.lease, lease.id);
    assert.equal(lost, false);
    await cluster.restart(leader);
  });

  it('a watch keeps delivering, in order and without gaps, after the member serving it is killed', async () => {
    const watching = await open();
    const writing = await open();
    const p = prefix();
    const seen: WatchEvent[] = [];
    const watcher = await watching.watch(p, (events) => seen.push(...events));
    const serving = await servingMember(cluster);
    await writing.put(`${p}a`, '1');
    await waitFor(() => seen.length === 1);

    await cluster.kill(serving);
    await writing.put(`${p}a`, '2'); // made while the watch has no stream
    await writing.delete(`${p}a`);
    await waitFor(() => seen.length === 3, 8000);
    await writing.put(`${p}b`, '3');
    await waitFor(() => seen.length === 4);
    watcher.close();
    assert.deepEqual(
      seen.map((e) => [e.type, e.key, e.value]),
      [
        ['put', `${p}a`, '1'],
        ['put', `${p}a`, '2'],
        ['delete', `${p}a`, null],
        ['put', `${p}b`, '3'],
      ],
    );
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.modRevision > seen[i - 1]!.modRevision);
    await cluster.restart(serving);
  });

  it('tells the holder when its lease is revoked by someone else', async () => {
    const store = await open();
    const lease = await store.grantLease(1000);
    let lost = false;
    lease.onLost(() => (lost = true));
    const other = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
    try {
      await other.leaseClient.leaseRevoke({ ID: lease.id });
    } finally {
      other.close();
    }
    await waitFor(() => lost, 3000);
  });

  it('fails fast with StoreError when no endpoint answers, refused or silent', async () => {
    const silent = await silentServer();
    try {
      const refused = await unusedPort();
      const store = new EtcdStore({ endpoints: [`127.0.0.1:${refused}`, `127.0.0.1:${silent.port}`] });
      stores.push(store);
      const started = Date.now();
      const results = await Promise.allSettled([
        store.get('k'),
        store.list('k/'),
        store.put('k', 'v'),
        store.delete('k'),
        store.txn([{ key: 'k', modRevision: 0 }], []),
        store.watch('k/', () => {}),
        store.grantLease(5000),
      ]);
      const elapsed = Date.now() - started;
      for (const result of results) {
        assert.equal(result.status, 'rejected');
        assert.ok(result.reason instanceof StoreError, String(result.reason));
        assert.equal(result.reason.code, 'EBB_STORE_UNAVAILABLE');
        assert.match(result.reason.message, new RegExp(`127\\.0\\.0\\.1:${refused}`));
      }
      assert.ok(elapsed < 4000, `took ${elapsed} ms`);
    } finally {
      await silent.close();
    }
  });

  it('fails fast with StoreError once every member of the cluster is down', async () => {
    const store = await open();
    await store.put(`${prefix()}k`, 'v');
    await Promise.all([0, 1, 2].map((i) => cluster.kill(i)));
    // Each call retries on the other members until its 3 s budget is spent, then gives up.
    for (const call of [() => store.get(`${prefix()}k`), () => store.put(`${prefix()}k`, 'v')]) {
      const started = Date.now();
      await assert.rejects(call(), StoreError);
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    }
  });
});

/** The member whose watch count is non-zero: the one this test's only watch stream is connected to. */
async function servingMember(cluster: EtcdCluster): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const counts = await Promise.all(Array.from({ length: cluster.size }, (_, i) => cluster.watchers(i)));
    const serving = counts.findIndex((n) => n > 0);
    if (serving >= 0 && counts.filter((n) => n > 0).length === 1) return serving;
    await sleep(50);
  }
  throw new Error('cannot tell which etcd member serves the watch');
}

/** A TCP relay to one address that can be cut (open connections reset, new ones dropped) and restored. */
class Relay {
  readonly endpoint: string;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private isCut = false;

  private constructor(server: Server) {
    this.server = server;
    this.endpoint = `127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  static async start(target: string): Promise<Relay> {
    const [host, port] = target.split(':') as [string, string];
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = new Relay(server);
    server.on('connection', (client) => relay.pipe(client, connect(Number(port), host)));
    return relay;
  }

  cut(): void {
    this.isCut = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.isCut = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private pipe(client: Socket, upstream: Socket): void {
    if (this.isCut) {
      client.destroy();
      upstream.destroy();
      return;
    }
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** A TCP listener that accepts and never answers: an etcd that hangs. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
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
