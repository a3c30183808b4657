import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { addressBytes } from './address-bytes.ts';
import { decodeQuery } from './dns-message.ts';
import { FQDN, fullRcode, queryBytes } from './dns-test-support.ts';
import { encodeResponse, type DnsResponse, type ResourceRecord } from './response-writer.ts';

function questionOf(name: string, type: dnsPacket.RecordType = 'A'): Buffer {
  const decoded = decodeQuery(queryBytes(name, type));
  assert.ok(decoded.kind === 'query');
  return decoded.query.question.wire;
}

function response(overrides: Partial<DnsResponse> = {}): DnsResponse {
  return {
    id: 5,
    flags: 0x8400,
    question: questionOf(FQDN),
    questionName: FQDN,
    answers: [],
    authorities: [],
    additionals: [],
    opt: null,
    maxSize: 65535,
    ...overrides,
  };
}

const a = (name: string, data: string): ResourceRecord => ({ type: 'A', name, ttl: 5, data });

describe('encodeResponse', () => {
  it('echoes the question bytes verbatim and frames for TCP on request', () => {
    const question = questionOf('ÉbB.\\x.TEST');
    const r = response({ question, questionName: null });
    const out = encodeResponse(r);
    assert.deepEqual(out.subarray(12), question);
    assert.equal(out.readUInt16BE(4), 1);
    const framed = encodeResponse(r, true);
    assert.equal(framed.readUInt16BE(0), out.length);
    assert.deepEqual(framed.subarray(2), out);
  });

  it('writes every record type the zone has, as dns-packet reads them', () => {
    const out = encodeResponse(
      response({
        answers: [a(FQDN, '127.0.0.11'), { type: 'AAAA', name: FQDN, ttl: 5, data: 'fd00::11' }],
        authorities: [
          { type: 'NS', name: FQDN, ttl: 5, data: `ns.${FQDN}` },
          {
            type: 'SOA',
            name: FQDN,
            ttl: 5,
            data: {
              mname: `ns.${FQDN}`,
              rname: `hostmaster.${FQDN}`,
              serial: 4_000_000_000,
              refresh: 1,
              retry: 2,
              expire: 3,
              minimum: 4,
            },
          },
        ],
        additionals: [
          [
            {
              type: 'SRV',
              name: `_x._tcp.${FQDN}`,
              ttl: 5,
              data: { priority: 10, weight: 10, port: 7000, target: `fe01.${FQDN}` },
            },
          ],
        ],
        opt: { udpPayloadSize: 1232, rcode: 16, dnssecOk: true },
      }),
    );
    const p = dnsPacket.decode(out);
    assert.deepEqual(
      p.answers!.map((x) => (x.type === 'A' || x.type === 'AAAA' ? [x.type, x.name, x.ttl, x.data] : null)),
      [
        ['A', FQDN, 5, '127.0.0.11'],
        ['AAAA', FQDN, 5, 'fd00::11'],
      ],
    );
    const [ns, soa] = p.authorities!;
    assert.ok(ns?.type === 'NS' && ns.data === `ns.${FQDN}`);
    assert.ok(soa?.type === 'SOA');
    assert.deepEqual(soa.data, {
      mname: `ns.${FQDN}`,
      rname: `hostmaster.${FQDN}`,
      serial: 4_000_000_000,
      refresh: 1,
      retry: 2,
      expire: 3,
      minimum: 4,
    });
    const [srv, opt] = p.additionals!;
    assert.ok(srv?.type === 'SRV');
    assert.deepEqual(srv.data, { priority: 10, weight: 10, port: 7000, target: `fe01.${FQDN}` });
    assert.ok(opt?.type === 'OPT');
    assert.equal(opt.udpPayloadSize, 1232);
    assert.equal(opt.flag_do, true);
    assert.equal(fullRcode(p), 16);
  });

  it('compresses owner names against the question but never an SRV target (RFC 2782)', () => {
    const out = encodeResponse(
      response({
        answers: [a(FQDN, '127.0.0.11')],
        additionals: [
          [{ type: 'SRV', name: FQDN, ttl: 5, data: { priority: 1, weight: 1, port: 1, target: FQDN } }],
        ],
      }),
    );
    const afterQuestion = 12 + FQDN.length + 2 + 4;
    assert.equal(out.readUInt16BE(afterQuestion), 0xc000 | 12);
    assert.ok(
      out.includes(Buffer.from('\x05pool1\x03ebb\x04test\x00', 'latin1'), afterQuestion),
      'the target is spelled out',
    );
  });

  it('sets TC and empties answer and authority when they do not fit, keeping the OPT', () => {
    const answers = Array.from({ length: 40 }, (_, i) => a(FQDN, `10.0.0.${i}`));
    const p = dnsPacket.decode(
      encodeResponse(
        response({ answers, maxSize: 512, opt: { udpPayloadSize: 1232, rcode: 0, dnssecOk: false } }),
      ),
    );
    assert.equal(p.flag_tc, true);
    assert.equal(p.answers!.length, 0);
    assert.deepEqual(
      p.additionals!.map((x) => x.type),
      ['OPT'],
    );
  });

  it('leaves out additional RRsets that do not fit, and forgets names they wrote', () => {
    const big = Array.from({ length: 40 }, (_, i) => a(`x${i}.other.example`, `10.0.1.${i}`));
    const out = encodeResponse(
      response({
        maxSize: 512,
        answers: [a(FQDN, '127.0.0.1')],
        additionals: [big, [a('y.other.example', '10.9.9.9')]],
      }),
    );
    assert.ok(out.length <= 512);
    const p = dnsPacket.decode(out);
    assert.equal(p.flag_tc, false);
    assert.deepEqual(
      p.additionals!.map((x) => (x.type === 'A' ? `${x.name} ${x.data}` : '')),
      ['y.other.example 10.9.9.9'],
    );
  });

  it('refuses names it cannot encode', () => {
    assert.throws(
      () => encodeResponse(response({ answers: [a(`${'x'.repeat(64)}.${FQDN}`, '1.2.3.4')] })),
      /bad label/,
    );
    assert.throws(() => encodeResponse(response({ answers: [a(`a..${FQDN}`, '1.2.3.4')] })), /bad label/);
    assert.throws(
      () => encodeResponse(response({ answers: [a(`${'x.'.repeat(130)}${FQDN}`, '1.2.3.4')] })),
      /too long/,
    );
    assert.throws(() => encodeResponse(response({ answers: [a(FQDN, 'fd00::1')] })), /not an A address/);
  });

  it('round-trips random record sets through dns-packet', () => {
    const label = fc.stringMatching(/^[a-z0-9_-]{1,12}$/);
    const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((ls) => ls.join('.'));
    const rr: fc.Arbitrary<ResourceRecord> = fc.oneof(
      fc.record({ type: fc.constant('A' as const), name, ttl: fc.nat(), data: fc.ipV4() }),
      fc.record({ type: fc.constant('NS' as const), name, ttl: fc.nat(), data: name }),
      fc.record({
        type: fc.constant('SRV' as const),
        name,
        ttl: fc.nat(),
        data: fc.record({
          priority: fc.nat(65535),
          weight: fc.nat(65535),
          port: fc.nat(65535),
          target: name,
        }),
      }),
    );
    fc.assert(
      fc.property(
        name,
        fc.array(rr, { maxLength: 12 }),
        fc.array(rr, { maxLength: 6 }),
        (qname, answers, extra) => {
          const p = dnsPacket.decode(
            encodeResponse(
              response({ question: questionOf(qname), questionName: qname, answers, additionals: [extra] }),
            ),
          );
          assert.equal(p.questions![0]!.name, qname);
          const simplify = (x: dnsPacket.Answer): unknown =>
            'data' in x
              ? [x.type, x.name, x.ttl, typeof x.data === 'object' ? { ...x.data } : x.data]
              : x.type;
          assert.deepEqual(
            p.answers!.map(simplify),
            answers.map((x) => simplify(x as dnsPacket.Answer)),
          );
          assert.deepEqual(
            p.additionals!.map(simplify),
            extra.map((x) => simplify(x as dnsPacket.Answer)),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('addressBytes', () => {
  it('agrees with dns-packet on IPv4 and with the WHATWG URL parser on IPv6', () => {
    const rdata = (data: string): Buffer => {
      const out = dnsPacket.encode({ type: 'response', answers: [{ type: 'A', name: 'x', data }] });
      return out.subarray(out.length - 4);
    };
    fc.assert(
      fc.property(fc.ipV4(), (ip) => assert.deepEqual(addressBytes(ip), rdata(ip))),
      { numRuns: 200 },
    );
    // dns-packet's IPv6 codec misreads some valid forms (`::0:0:0:0:0:0:1`), so compare canonical text.
    const canonical = (ip: string): string => new URL(`http://[${ip}]/`).hostname;
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const bytes = addressBytes(ip);
        assert.ok(bytes && bytes.length === 16);
        const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
        assert.equal(canonical(groups.join(':')), canonical(ip));
      }),
      { numRuns: 1000 },
    );
    for (const bad of ['', 'fe01', '1.2.3', '1.2.3.256', 'fe80::1%eth0', ':::'])
      assert.equal(addressBytes(bad), null, bad);
  });
});
