import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  chainName,
  chainScript,
  maxListingBytes,
  parseChainListing,
  parseSockets,
  ssArgs,
  tableName,
} from './index.ts';

describe('kernel path: nft script and listings', () => {
  it('names the table after the pool and the chain after the member', () => {
    assert.equal(tableName('pool-1'), 'ebb_pool_1');
    assert.equal(chainName('fe-01'), 'm_fe_01');
  });

  it('one transaction: the chain is created, flushed and given exactly the rules (SYN without ACK, reset)', () => {
    const script = chainScript('p1', 'fe01', [
      { service: 'db', address: '10.0.0.1', port: 5432 },
      { service: 'mq', address: '2001:db8::1', port: 1883 },
    ]);
    assert.equal(
      script,
      [
        'add table inet ebb_p1',
        'add chain inet ebb_p1 m_fe01 { type filter hook input priority -10; policy accept; }',
        'flush chain inet ebb_p1 m_fe01',
        'add rule inet ebb_p1 m_fe01 ip daddr 10.0.0.1 tcp dport 5432 tcp flags & (syn | ack) == syn counter reject with tcp reset comment "ebb db 10.0.0.1 5432"',
        'add rule inet ebb_p1 m_fe01 ip6 daddr 2001:db8::1 tcp dport 1883 tcp flags & (syn | ack) == syn counter reject with tcp reset comment "ebb mq 2001:db8::1 1883"',
        '',
      ].join('\n'),
    );
  });

  it('no rules: the chain goes (nothing of Ebb in the data path)', () => {
    assert.match(
      chainScript('p1', 'fe01', []),
      /flush chain inet ebb_p1 m_fe01\ndelete chain inet ebb_p1 m_fe01\n$/,
    );
  });

  it('reads back the keys and counters of our rules in that chain only', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { chain: { family: 'inet', table: 'ebb_p1', name: 'm_fe01' } },
        {
          rule: {
            chain: 'm_fe01',
            comment: 'ebb db 10.0.0.1 5432',
            expr: [{ match: {} }, { counter: { packets: 3, bytes: 180 } }, { reject: { type: 'tcp reset' } }],
          },
        },
        { rule: { chain: 'm_fe01', comment: 'someone else' } },
        { rule: { chain: 'm_fe02', comment: 'ebb db 10.0.0.2 5432' } },
      ],
    });
    const listing = parseChainListing(json, 'm_fe01');
    assert.deepEqual([...listing.keys], ['10.0.0.1 5432']);
    assert.equal(listing.refused.get('10.0.0.1 5432'), 3);
  });

  it('refuses a listing too large or not shaped like one', () => {
    assert.throws(() => parseChainListing(' '.repeat(maxListingBytes + 1), 'm'), /over/);
    assert.throws(() => parseChainListing('{', 'm'), /not JSON/);
    assert.throws(() => parseChainListing('{"x":1}', 'm'), /no nftables array/);
  });

  it('fuzz: any input either parses to keys of the comment form or throws an Error, never anything else', () => {
    const item = fc.oneof(
      fc.anything(),
      fc.record({
        rule: fc.record({
          chain: fc.oneof(fc.constant('m'), fc.string()),
          comment: fc.oneof(fc.string(), fc.constant('ebb s 1.2.3.4 80'), fc.anything()),
          expr: fc.oneof(
            fc.anything(),
            fc.array(fc.record({ counter: fc.record({ packets: fc.anything() }) })),
          ),
        }),
      }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(item).map((nftables) => JSON.stringify({ nftables })),
        ),
        (text) => {
          try {
            const listing = parseChainListing(text, 'm');
            for (const key of listing.keys) assert.match(key, /^\S+ \d{1,5}$/);
            for (const n of listing.refused.values()) assert.ok(Number.isSafeInteger(n) && n >= 0);
          } catch (err) {
            assert.ok(err instanceof Error);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('kernel path: ss queries and their output', () => {
  it('asks for established and close-wait sockets of address:port; -K destroys them', () => {
    assert.deepEqual(ssArgs('10.0.0.1', 80), [
      '-H',
      '-t',
      '-n',
      'state',
      'established',
      'state',
      'close-wait',
      'src',
      '10.0.0.1:80',
    ]);
    assert.equal(ssArgs('::1', 80).at(-1), '[::1]:80');
    assert.equal(ssArgs('10.0.0.1', 80, true)[0], '-K');
  });

  it('reads peers from lines with or without a state column, and skips what is not a socket line', () => {
    const out = [
      'ESTAB      0      0      127.0.0.11:7000 127.0.0.1:52004',
      'CLOSE-WAIT 1      0      127.0.0.11:7000 127.0.0.1:52012 ',
      '0      0      [::1]:7000 [::1]:40000',
      '0      0      [fe80::1%eth0]:7000 [fe80::2%eth0]:41000',
      'garbage line',
      '',
    ].join('\n');
    assert.deepEqual(parseSockets(out), [
      '127.0.0.1:52004',
      '127.0.0.1:52012',
      '[::1]:40000',
      '[fe80::2%eth0]:41000',
    ]);
  });

  it('refuses more lines than its limit', () => {
    const line = 'ESTAB 0 0 1.1.1.1:1 2.2.2.2:2\n';
    assert.equal(parseSockets(line.repeat(3), 3).length, 3);
    assert.throws(() => parseSockets(line.repeat(4), 3), /more than 3/);
  });

  it('fuzz: text under the limit never throws, and every peer it yields is an endpoint', () => {
    const endpoint = fc.oneof(
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 65535 })).map(([ip, port]) => `${ip}:${port}`),
      fc.ipV6().map((ip) => `[${ip}]:1`),
      fc.string(),
    );
    const line = fc
      .tuple(fc.constantFrom('', 'ESTAB ', 'CLOSE-WAIT '), fc.nat(), endpoint, endpoint)
      .map(([state, n, a, b]) => `${state}${n} 0 ${a} ${b}`);
    fc.assert(
      fc.property(fc.array(fc.oneof(line, fc.string()), { maxLength: 50 }), (lines) => {
        for (const peer of parseSockets(lines.join('\n'), 100)) assert.match(peer, /:\d{1,5}$/);
      }),
      { numRuns: 500 },
    );
  });
});
