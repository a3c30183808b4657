import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import type { Answer, SoaAnswer, SrvAnswer } from 'dns-packet';
import { Rcode } from './dns-message.ts';
import {
  FQDN,
  addressesOf,
  answerBytes,
  ask,
  askBytes,
  context,
  fullRcode,
  member,
  queryBytes,
  sampleView,
} from './dns-test-support.ts';
import { shuffle } from './zone-answer.ts';

const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
/** dns-packet's RecordType has no name for ANY. */
const ANY = 255;

function soaOf(packet: { authorities?: Answer[] }): SoaAnswer {
  const soa = packet.authorities?.find((a): a is SoaAnswer => a.type === 'SOA');
  assert.ok(soa, 'an SOA in the authority section');
  return soa;
}

function srvOf(packet: { answers?: Answer[] }): SrvAnswer[] {
  return (packet.answers ?? []).filter((a): a is SrvAnswer => a.type === 'SRV');
}

function bigView(count: number) {
  return sampleView({
    members: Array.from({ length: count }, (_, i) =>
      member(`m${i + 1}`, [`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`]),
    ),
  });
}

describe('zone answer: the pool name', () => {
  it('answers A with every accepting member, authoritatively, with the pool TTL', () => {
    const res = ask(sampleView(), FQDN, 'A');
    assert.equal(res.rcode, 'NOERROR');
    assert.ok(res.flags! & AA);
    assert.deepEqual(addressesOf(res).sort(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    assert.ok(res.answers!.every((a) => a.type === 'A' && a.ttl === 5 && a.name === FQDN));
    assert.deepEqual(res.questions, [{ name: FQDN, type: 'A', class: 'IN' }]);
  });

  it('answers AAAA with the members that have IPv6 addresses', () => {
    assert.deepEqual(addressesOf(ask(sampleView(), FQDN, 'AAAA')), ['fd00::11']);
  });

  it('shuffles the order afresh for each response', () => {
    const view = bigView(5);
    const orders = new Set<string>();
    const firsts = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const addrs = addressesOf(ask(view, FQDN, 'A'));
      assert.equal(addrs.length, 5);
      orders.add(addrs.join(','));
      firsts.add(addrs[0]!);
    }
    assert.equal(firsts.size, 5, 'every member comes first sometimes');
    assert.ok(orders.size > 30, `many distinct orders (${orders.size})`);
  });

  it('shuffle is an unbiased permutation of its input', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[shuffle([0, 1, 2])[0]!]!++;
    for (const c of counts) assert.ok(c > 800 && c < 1200, `roughly a third each: ${counts.join(',')}`);
    assert.deepEqual(shuffle([3, 1, 2]).sort(), [1, 2, 3]);
  });

  it('leaves out a member whose primary service is paused, but keeps it for its other services', () => {
    const view = sampleView();
    view.members[1] = member('fe02', ['127.0.0.12'], { frontend: false });
    assert.deepEqual(addressesOf(ask(view, FQDN, 'A')).sort(), ['127.0.0.11', '127.0.0.13']);
    assert.deepEqual(addressesOf(ask(view, `echo.${FQDN}`, 'A')).sort(), [
      '127.0.0.11',
      '127.0.0.12',
      '127.0.0.13',
    ]);
  });

  it('leaves out a member whose agent is down even if its last status said accepting', () => {
    const view = sampleView();
    view.members[2] = member('fe03', ['127.0.0.13'], { agentUp: false });
    assert.deepEqual(addressesOf(ask(view, FQDN, 'A')).sort(), ['127.0.0.11', '127.0.0.12']);
    assert.deepEqual(addressesOf(ask(view, `echo.${FQDN}`, 'A')).sort(), ['127.0.0.11', '127.0.0.12']);
    assert.equal(srvOf(ask(view, `_frontend._udp.${FQDN}`, 'SRV')).length, 2);
  });

  it('answers NODATA with the SOA when no member accepts', () => {
    const view = sampleView({ members: [member('fe01', ['127.0.0.11'], { frontend: false })] });
    const res = ask(view, FQDN, 'A');
    assert.equal(res.rcode, 'NOERROR');
    assert.ok(res.flags! & AA);
    assert.equal(res.answers!.length, 0);
    assert.equal(soaOf(res).data.minimum, 5);
  });

  it('leaves out members without services and repeats no address', () => {
    const view = sampleView({
      members: [
        { id: 'bare', addresses: ['127.0.0.20'], agentUp: true, services: [] },
        member('fe01', ['127.0.0.11', '127.0.0.11']),
        member('fe02', ['127.0.0.11']),
      ],
    });
    assert.deepEqual(addressesOf(ask(view, FQDN, 'A')), ['127.0.0.11']);
  });
});

describe('zone answer: service and member names', () => {
  it('answers <service>.<fqdn> with the members whose service accepts', () => {
    const view = sampleView();
    view.members[0] = member('fe01', ['127.0.0.11', 'fd00::11'], { echo: false });
    assert.deepEqual(addressesOf(ask(view, `echo.${FQDN}`, 'A')).sort(), ['127.0.0.12', '127.0.0.13']);
    assert.deepEqual(addressesOf(ask(view, `frontend.${FQDN}`, 'AAAA')), ['fd00::11']);
  });

  it('answers NODATA for a known service nobody accepts', () => {
    const view = sampleView({ members: [member('fe01', ['127.0.0.11'], { echo: false })] });
    const res = ask(view, `echo.${FQDN}`, 'A');
    assert.equal(res.rcode, 'NOERROR');
    assert.equal(res.answers!.length, 0);
    soaOf(res);
  });

  it('always answers a member host record: agent down, paused, or both', () => {
    const view = sampleView({
      members: [member('fe01', ['127.0.0.11', 'fd00::11'], { agentUp: false, frontend: false, echo: false })],
    });
    assert.deepEqual(addressesOf(ask(view, `fe01.${FQDN}`, 'A')), ['127.0.0.11']);
    assert.deepEqual(addressesOf(ask(view, `fe01.${FQDN}`, 'AAAA')), ['fd00::11']);
    assert.equal(ask(view, FQDN, 'A').answers!.length, 0);
  });

  it('answers NODATA for a member without an address of the asked family', () => {
    const res = ask(sampleView(), `fe02.${FQDN}`, 'AAAA');
    assert.equal(res.rcode, 'NOERROR');
    assert.equal(res.answers!.length, 0);
    soaOf(res);
  });

  it('prefers a member over a service of the same name', () => {
    const view = sampleView();
    view.members.push({ ...member('echo', ['127.0.0.99']), services: [] });
    assert.deepEqual(addressesOf(ask(view, `echo.${FQDN}`, 'A')), ['127.0.0.99']);
  });

  it('matches names case-insensitively and echoes the question as asked', () => {
    const res = ask(sampleView(), 'FE01.Pool1.EBB.test', 'A');
    assert.deepEqual(addressesOf(res), ['127.0.0.11']);
    assert.equal(res.questions![0]!.name, 'FE01.Pool1.EBB.test');
    assert.equal(res.answers![0]!.name, 'FE01.Pool1.EBB.test');
    assert.equal(ask(sampleView({ fqdn: 'POOL1.ebb.test.' }), 'pool1.EBB.TEST', 'A').answers!.length, 3);
  });
});

describe('zone answer: SRV', () => {
  it('gives one record per accepting member and listener, with priority and weight 10', () => {
    const res = ask(sampleView(), `_frontend._udp.${FQDN}`, 'SRV');
    const srv = srvOf(res);
    assert.equal(srv.length, 3);
    assert.deepEqual(
      srv.map((r) => r.data.target).sort(),
      ['fe01', 'fe02', 'fe03'].map((m) => `${m}.${FQDN}`),
    );
    for (const r of srv) {
      assert.equal(r.data.port, 5060);
      assert.equal(r.data.priority, 10);
      assert.equal(r.data.weight, 10);
      assert.equal(r.ttl, 5);
    }
  });

  it('maps sip listeners by transport and tcp and http listeners to _tcp', () => {
    const view = sampleView();
    assert.deepEqual(
      new Set(srvOf(ask(view, `_frontend._tcp.${FQDN}`, 'SRV')).map((r) => r.data.port)),
      new Set([5061]),
    );
    assert.deepEqual(
      new Set(srvOf(ask(view, `_echo._tcp.${FQDN}`, 'SRV')).map((r) => r.data.port)),
      new Set([7000]),
    );
    assert.deepEqual(
      new Set(srvOf(ask(view, `_web._tcp.${FQDN}`, 'SRV')).map((r) => r.data.port)),
      new Set([8080]),
    );
    assert.equal(ask(view, `_echo._udp.${FQDN}`, 'SRV').rcode, 'NXDOMAIN');
  });

  it('adds the targets addresses in the additional section', () => {
    const res = ask(sampleView(), `_echo._tcp.${FQDN}`, 'SRV', { edns: 1232 });
    assert.deepEqual(
      (res.additionals ?? [])
        .flatMap((a) => (a.type === 'A' || a.type === 'AAAA' ? [`${a.name} ${a.data}`] : []))
        .sort(),
      [
        `fe01.${FQDN} 127.0.0.11`,
        `fe01.${FQDN} fd00::11`,
        `fe02.${FQDN} 127.0.0.12`,
        `fe03.${FQDN} 127.0.0.13`,
      ],
    );
    assert.equal(res.additionals!.at(-1)!.type, 'OPT');
  });

  it('leaves out paused members, and answers NODATA when none accepts', () => {
    const view = sampleView();
    view.members[0] = member('fe01', ['127.0.0.11'], { frontend: false });
    assert.equal(srvOf(ask(view, `_frontend._udp.${FQDN}`, 'SRV')).length, 2);
    const none = sampleView({ members: [member('fe01', ['127.0.0.11'], { frontend: false })] });
    const res = ask(none, `_frontend._udp.${FQDN}`, 'SRV');
    assert.equal(res.rcode, 'NOERROR');
    assert.equal(res.answers!.length, 0);
    soaOf(res);
  });

  it('answers NODATA for A at an SRV name and at the _tcp empty non-terminal', () => {
    for (const name of [`_echo._tcp.${FQDN}`, `_tcp.${FQDN}`, `_udp.${FQDN}`]) {
      const res = ask(sampleView(), name, 'A');
      assert.equal(res.rcode, 'NOERROR', name);
      assert.equal(res.answers!.length, 0, name);
    }
  });

  it('drops additional records that do not fit without setting TC (RFC 2181 §9)', () => {
    const view = bigView(10); // names are compressed: 10 SRV records take about 420 bytes
    const res = ask(view, `_frontend._udp.${FQDN}`, 'SRV');
    assert.equal(srvOf(res).length, 10);
    assert.equal(res.flags! & TC, 0);
    assert.ok(res.additionals!.length > 0 && res.additionals!.length < 10, 'some glue left out');
    const wire = answerBytes(view, queryBytes(`_frontend._udp.${FQDN}`, 'SRV'));
    assert.ok(wire && wire.length <= 512, `${wire?.length} bytes`);
  });
});

describe('zone answer: apex, negative answers, refusals', () => {
  it('answers SOA at the apex, with the serial and the pool TTL as the negative TTL', () => {
    const res = ask(sampleView(), FQDN, 'SOA');
    const soa = res.answers![0] as SoaAnswer;
    assert.equal(soa.type, 'SOA');
    assert.equal(soa.data.mname, `ns.${FQDN}`);
    assert.equal(soa.data.rname, `hostmaster.${FQDN}`);
    assert.equal(soa.data.serial, 2024);
    assert.equal(soa.data.minimum, 5);
    assert.ok(res.flags! & AA);
  });

  it('answers NS at the apex, with the name server address as glue, and ns.<fqdn> A', () => {
    const res = ask(sampleView(), FQDN, 'NS', { edns: 1232 });
    assert.deepEqual(
      res.answers!.map((a) => (a.type === 'NS' ? a.data : a.type)),
      [`ns.${FQDN}`],
    );
    assert.deepEqual(addressesOf({ answers: res.additionals ?? [] }), ['127.0.0.53']);
    assert.deepEqual(addressesOf(ask(sampleView(), `ns.${FQDN}`, 'A')), ['127.0.0.53']);
    const none = ask(sampleView(), `ns.${FQDN}`, 'A', {}, context({ nsAddresses: [] }));
    assert.equal(none.rcode, 'NOERROR');
    assert.equal(none.answers!.length, 0);
  });

  it('answers NXDOMAIN with the SOA for unknown names in the zone', () => {
    for (const name of [`nobody.${FQDN}`, `x.fe01.${FQDN}`, `_nope._tcp.${FQDN}`, `a.b.c.${FQDN}`]) {
      const res = ask(sampleView(), name, 'A');
      assert.equal(res.rcode, 'NXDOMAIN', name);
      assert.ok(res.flags! & AA, name);
      assert.equal(soaOf(res).name, FQDN);
    }
  });

  it('answers NODATA for types a name does not have', () => {
    for (const [name, type] of [
      [FQDN, 'MX'],
      [`fe01.${FQDN}`, 'TXT'],
      [`fe01.${FQDN}`, 'SRV'],
      [FQDN, 'SRV'],
      [FQDN, 65280],
    ] as const) {
      const res = ask(sampleView(), name, type);
      assert.equal(res.rcode, 'NOERROR', `${name} ${type}`);
      assert.equal(res.answers!.length, 0);
      soaOf(res);
    }
  });

  it('refuses names outside the zone, without AA', () => {
    for (const name of ['example.com', 'ebb.test', 'pool1.ebb.test.evil', 'xpool1.ebb.test', '.']) {
      const res = ask(sampleView(), name, 'A');
      assert.equal(res.rcode, 'REFUSED', name);
      assert.equal(res.flags! & AA, 0, name);
      assert.equal(res.answers!.length, 0);
    }
  });

  it('refuses zone transfers and classes other than IN', () => {
    assert.equal(ask(sampleView(), FQDN, 'AXFR').rcode, 'REFUSED');
    assert.equal(ask(sampleView(), FQDN, 'IXFR').rcode, 'REFUSED');
    const ch = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ name: FQDN, type: 'A', class: 'CH' }],
    });
    assert.equal(fullRcode(askPacket(ch)), Rcode.refused);
  });

  it('answers ANY minimally with the address records (RFC 8482)', () => {
    const res = ask(sampleView(), FQDN, ANY);
    assert.deepEqual(new Set(res.answers!.map((a) => a.type)), new Set(['A', 'AAAA']));
    assert.equal(srvOf(ask(sampleView(), `_echo._tcp.${FQDN}`, ANY)).length, 3);
    const classAny = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ name: FQDN, type: 'A', class: 'ANY' }],
    });
    assert.equal(addressesOf(askPacket(classAny)).length, 3);
  });

  it('copies RD and never sets RA', () => {
    const res = ask(sampleView(), FQDN, 'A');
    assert.equal(res.flag_rd, true);
    assert.equal(res.flag_ra, false);
    assert.equal(ask(sampleView(), FQDN, 'A', { flags: 0 }).flag_rd, false);
  });
});

describe('zone answer: EDNS and truncation', () => {
  it('echoes an OPT record with our payload size only when the query had one', () => {
    const res = ask(sampleView(), FQDN, 'A', { edns: 4096 });
    const opt = res.additionals!.find((a) => a.type === 'OPT');
    assert.ok(opt && opt.type === 'OPT');
    assert.equal(opt.udpPayloadSize, 1232);
    assert.equal(opt.ednsVersion, 0);
    assert.equal(ask(sampleView(), FQDN, 'A').additionals!.length, 0);
  });

  it('copies the DO bit (RFC 3225)', () => {
    const opt = ask(sampleView(), FQDN, 'A', { edns: 1232, dnssecOk: true }).additionals!.find(
      (a) => a.type === 'OPT',
    );
    assert.ok(opt && opt.type === 'OPT' && opt.flag_do);
  });

  it('answers BADVERS to EDNS versions above 0', () => {
    const res = ask(sampleView(), FQDN, 'A', { edns: 1232, ednsVersion: 1 });
    assert.equal(fullRcode(res), Rcode.badVers);
    assert.equal(res.answers!.length, 0);
    const opt = res.additionals!.find((a) => a.type === 'OPT');
    assert.ok(opt && opt.type === 'OPT' && opt.ednsVersion === 0);
  });

  it('sets TC over UDP without EDNS past 512 bytes, emptying the answer', () => {
    const view = bigView(40); // 16 bytes per compressed A record: about 670 bytes
    const res = ask(view, FQDN, 'A');
    assert.ok(res.flags! & TC);
    assert.equal(res.answers!.length, 0);
    assert.equal(res.rcode, 'NOERROR');
    assert.equal(res.questions!.length, 1);
  });

  it('honours the client payload size, capped at ours, and never below 512', () => {
    const view = bigView(60); // about 1000 bytes
    assert.equal(ask(view, FQDN, 'A', { edns: 1232 }).answers!.length, 60);
    assert.ok(ask(view, FQDN, 'A', { edns: 800 }).flags! & TC);
    assert.ok(ask(view, FQDN, 'A', { edns: 4096 }, context({ maxUdpPayload: 900 })).flags! & TC);
    const small = bigView(25); // about 450 bytes
    assert.equal(ask(small, FQDN, 'A', { edns: 100 }).answers!.length, 25);
  });

  it('sends the full answer over TCP', () => {
    const view = bigView(300);
    const res = ask(view, FQDN, 'A', {}, context({ transport: 'tcp' }));
    assert.equal(res.flags! & TC, 0);
    assert.equal(res.answers!.length, 300);
  });
});

function askPacket(msg: Buffer) {
  const res = askBytes(sampleView(), msg);
  assert.ok(res);
  return res;
}
