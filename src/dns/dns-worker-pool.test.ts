import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as dnsPacket from 'dns-packet';
import { ListenError, type PoolView } from '../core/index.ts';
import { DnsWorkerPool, sumStats } from './dns-worker-pool.ts';
import { zeroDnsStats } from './dns-server.ts';
import {
  FQDN,
  addressesOf,
  member,
  queryBytes,
  sampleView,
  tcpExchange,
  udpExchange,
} from './dns-test-support.ts';

const decode = (reply: Buffer | null) => {
  assert.ok(reply, 'a reply');
  return dnsPacket.decode(reply);
};

/** Polls `check` every 20 ms for at most `ms`; the last value. */
async function within<T>(ms: number, read: () => T | Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const end = Date.now() + ms;
  let value = await read();
  while (!ok(value) && Date.now() < end) {
    await sleep(20);
    value = await read();
  }
  return value;
}

/**
 * The pool DNS on worker threads (issue 12: `dns: { workers: N }`): two real threads share one port with
 * SO_REUSEPORT; both answer, both learn a pause, their counters add up, and they let go of the port.
 */
describe('DnsWorkerPool', () => {
  let view: PoolView = sampleView();
  const listeners: Array<() => void> = [];
  let pool: DnsWorkerPool;

  before(async () => {
    pool = new DnsWorkerPool({
      listen: { host: '127.0.0.1', port: 0 },
      view: () => view,
      workers: 2,
      onViewChange: (l) => {
        listeners.push(l);
        return () => listeners.splice(listeners.indexOf(l), 1);
      },
    });
    await pool.start();
  });
  after(() => pool.close());

  it('answers over UDP and TCP on one port, from both workers', async () => {
    assert.ok(pool.port > 0);
    const sent = 64;
    // Each exchange is a new client socket (a new source port): the kernel hashes them over the workers.
    for (let i = 0; i < sent; i++) {
      const res = decode(await udpExchange(pool.port, queryBytes(FQDN, 'A', { id: i })));
      assert.equal(res.id, i);
      assert.equal(addressesOf(res).length, 3);
    }
    const tcp = decode(await tcpExchange(pool.port, queryBytes(`fe02.${FQDN}`, 'A', { id: 5 })));
    assert.deepEqual(addressesOf(tcp), ['127.0.0.12']);
    // Counters come once a second from each worker.
    const stats = await within(
      3000,
      () => pool.stats(),
      (s) => s.udpQueries === sent && s.tcpQueries === 1,
    );
    assert.equal(stats.udpQueries, sent);
    assert.equal(stats.tcpQueries, 1);
    assert.equal(stats.rcodes.noError, sent + 1);
    const each = pool.workerStats();
    assert.equal(each.length, 2);
    for (const s of each)
      assert.ok(
        (s?.udpQueries ?? 0) > 0,
        `both workers answered: ${JSON.stringify(each.map((x) => x?.udpQueries))}`,
      );
  });

  it('a pause reaches every worker: no answer of either names the paused member', async () => {
    view = sampleView();
    view.members[0] = member('fe01', ['127.0.0.11'], { frontend: false });
    for (const l of listeners) l();
    await pool.viewsApplied();
    for (let i = 0; i < 40; i++) {
      const res = decode(await udpExchange(pool.port, queryBytes(FQDN, 'A', { id: i })));
      assert.deepEqual(addressesOf(res).sort(), ['127.0.0.12', '127.0.0.13']);
    }
    view = sampleView();
    for (const l of listeners) l();
  });

  it('a port taken by another socket: start fails with a ListenError naming EADDRINUSE', async () => {
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
    try {
      const other = new DnsWorkerPool({
        listen: { host: '127.0.0.1', port: taken.address().port },
        view: () => view,
        workers: 2,
      });
      await assert.rejects(other.start(), (err: unknown) => {
        assert.ok(err instanceof ListenError, String(err));
        assert.equal(err.errno, 'EADDRINUSE');
        assert.match(err.message, /dns\.listen/);
        return true;
      });
    } finally {
      taken.close();
    }
  });

  it('close lets go of the port', async () => {
    const other = new DnsWorkerPool({ listen: { host: '127.0.0.1', port: 0 }, view: () => view, workers: 2 });
    await other.start();
    const port = other.port;
    await other.close();
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind({ port, address: '127.0.0.1', exclusive: true }, () => resolve());
    });
    again.close();
  });

  it('refuses fewer than two workers', () => {
    assert.throws(
      () => new DnsWorkerPool({ listen: { host: '127.0.0.1', port: 0 }, view: () => view, workers: 1 }),
      /2 or more/,
    );
  });
});

describe('sumStats', () => {
  it('adds counters and rcodes', () => {
    const a = { ...zeroDnsStats(), udpQueries: 2, rcodes: { ...zeroDnsStats().rcodes, noError: 2 } };
    const b = {
      ...zeroDnsStats(),
      udpQueries: 3,
      rcodes: { ...zeroDnsStats().rcodes, noError: 1, nxDomain: 2 },
    };
    const sum = sumStats([a, b]);
    assert.equal(sum.udpQueries, 5);
    assert.equal(sum.rcodes.noError, 3);
    assert.equal(sum.rcodes.nxDomain, 2);
    assert.deepEqual(sumStats([]), zeroDnsStats());
  });
});
