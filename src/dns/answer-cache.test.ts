import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import type { PoolView } from '../core/index.ts';
import { AnswerCache } from './answer-cache.ts';
import { DnsServer } from './dns-server.ts';
import {
  FQDN,
  addressesOf,
  member,
  queryBytes,
  sampleView,
  tcpExchange,
  udpExchange,
} from './dns-test-support.ts';

type Decoded = dnsPacket.DecodedPacket & { rcode: string };
const decode = (reply: Buffer | null): Decoded => {
  assert.ok(reply, 'a reply');
  return dnsPacket.decode(reply) as Decoded;
};

/**
 * The answer cache behind the DNS server (issue 12's precomputed answers): the same bytes as a fresh
 * answer but the ID, the query's own case echoed, every member first equally often, and nothing stale
 * once the pool's answers change.
 */
describe('DNS answer cache', () => {
  let view: PoolView = sampleView();
  let server: DnsServer;
  before(async () => {
    server = new DnsServer({ listen: { host: '127.0.0.1', port: 0 }, view: () => view });
    await server.start();
  });
  after(() => server.close());

  it('a repeated query is answered from the cache with its own ID and the same records', async () => {
    const first = decode(await udpExchange(server.port, queryBytes(`fe02.${FQDN}`, 'A', { id: 7 })));
    const hits = server.stats().answerCacheHits;
    const second = decode(await udpExchange(server.port, queryBytes(`fe02.${FQDN}`, 'A', { id: 4242 })));
    assert.equal(server.stats().answerCacheHits, hits + 1, 'the second came from the cache');
    assert.equal(first.id, 7);
    assert.equal(second.id, 4242);
    assert.deepEqual(second.answers, first.answers);
    assert.deepEqual(second.questions, first.questions);
  });

  it('echoes the case each query was sent in (RFC 4343, 0x20 clients)', async () => {
    const lower = decode(await udpExchange(server.port, queryBytes(`fe01.${FQDN}`, 'A')));
    const mixed = decode(await udpExchange(server.port, queryBytes(`Fe01.PoOl1.eBb.TeSt`, 'A')));
    assert.equal(lower.questions![0]!.name, `fe01.${FQDN}`);
    assert.equal(mixed.questions![0]!.name, 'Fe01.PoOl1.eBb.TeSt');
    assert.deepEqual(addressesOf(mixed), addressesOf(lower));
  });

  it('hands out each rotation in turn: every member first equally often', async () => {
    const firsts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const res = decode(await udpExchange(server.port, queryBytes(FQDN, 'A', { id: i })));
      const all = addressesOf(res);
      assert.equal(all.length, 3);
      firsts.set(all[0]!, (firsts.get(all[0]!) ?? 0) + 1);
    }
    assert.deepEqual([...firsts.values()], [10, 10, 10], JSON.stringify([...firsts]));
  });

  it('queries that never repeat (a random-case name, as an EDNS cookie would) still vary who comes first', async () => {
    const firsts = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      // 0x20: a different mix of upper and lower case each time, so each query is a cache miss.
      const name = [...FQDN].map((c, k) => ((i >> (k % 6)) & 1 ? c.toUpperCase() : c)).join('');
      const res = decode(await udpExchange(server.port, queryBytes(`${name}`, 'A', { id: i })));
      const first = addressesOf(res)[0]!;
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    // Uniform at random: each of 3 members first in ≥ 5 of 60 fails with probability about 1e-5.
    assert.equal(firsts.size, 3, JSON.stringify([...firsts]));
    for (const n of firsts.values()) assert.ok(n >= 5, JSON.stringify([...firsts]));
  });

  it('UDP and TCP answers are kept apart (TCP carries its length prefix)', async () => {
    for (let i = 0; i < 2; i++) {
      const udp = decode(await udpExchange(server.port, queryBytes(`fe03.${FQDN}`, 'A', { id: 1 + i })));
      const tcp = decode(await tcpExchange(server.port, queryBytes(`fe03.${FQDN}`, 'A', { id: 9 + i })));
      assert.deepEqual(addressesOf(udp), ['127.0.0.13']);
      assert.deepEqual(addressesOf(tcp), ['127.0.0.13']);
      assert.equal(tcp.id, 9 + i);
    }
  });

  it('a change of the answers empties it: a paused member is gone from the very next answer', async () => {
    await udpExchange(server.port, queryBytes(FQDN, 'A'));
    view = sampleView();
    view.members[0] = member('fe01', ['127.0.0.11'], { frontend: false });
    const res = decode(await udpExchange(server.port, queryBytes(FQDN, 'A')));
    assert.deepEqual(addressesOf(res).sort(), ['127.0.0.12', '127.0.0.13']);
    view = sampleView();
    const back = decode(await udpExchange(server.port, queryBytes(FQDN, 'A')));
    assert.equal(addressesOf(back).length, 3, 'and back once it resumes');
  });

  it('a new view with the same answers (only session counts changed) keeps it', async () => {
    await udpExchange(server.port, queryBytes(`fe02.${FQDN}`, 'A'));
    const hits = server.stats().answerCacheHits;
    view = sampleView();
    view.members[1]!.services[0]!.sessions = 42;
    await udpExchange(server.port, queryBytes(`fe02.${FQDN}`, 'A'));
    assert.equal(server.stats().answerCacheHits, hits + 1);
  });

  it('counts answers from the cache like any other: queries and rcodes', async () => {
    const before = server.stats();
    for (let i = 0; i < 3; i++) {
      const res = decode(await udpExchange(server.port, queryBytes(`nope.${FQDN}`, 'A', { id: i })));
      assert.equal(res.rcode, 'NXDOMAIN');
    }
    const now = server.stats();
    assert.equal(now.udpQueries, before.udpQueries + 3);
    assert.equal(now.rcodes.nxDomain, before.rcodes.nxDomain + 3);
  });
});

describe('AnswerCache bounds', () => {
  it('does not key queries longer than 512 bytes, and starts over when full', () => {
    assert.equal(AnswerCache.keyOf(Buffer.alloc(513), 'udp'), null);
    const cache = new AnswerCache(2);
    const entry = { encodings: [Buffer.from([0, 0, 1])], next: 0, rcode: undefined, truncated: false };
    cache.set('a', entry);
    cache.set('b', entry);
    cache.set('c', entry);
    assert.equal(cache.size, 1);
    assert.equal(cache.get('a'), undefined);
  });

  it('patches the ID in a copy, never in the cached bytes', () => {
    const encoded = Buffer.from([0xaa, 0xbb, 1, 2, 3]);
    const entry = { encodings: [encoded], next: 0, rcode: undefined, truncated: false };
    const out = AnswerCache.answer(entry, 0x0102, 0);
    assert.deepEqual([...out], [1, 2, 1, 2, 3]);
    assert.deepEqual([...encoded], [0xaa, 0xbb, 1, 2, 3]);
  });
});
