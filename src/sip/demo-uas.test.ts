import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { DemoUas } from './demo-uas.ts';
import { parseDatagram } from './parse-datagram.ts';
import { getHeader, getHeaderValues } from './sip-headers.ts';
import type { SipMessage, SipRequest, SipResponse } from './sip-message.ts';
import type { SipPeer } from './sip-peer.ts';

const SELF = { host: '127.0.0.1', port: 15060, transport: 'udp' as const };
const PROXY = { host: '192.0.2.10', port: 5060 };

function parse(lines: string[], body = ''): SipMessage {
  return parseDatagram(
    Buffer.from([...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n')),
  );
}

function request(
  method: string,
  opts: { toTag?: string; branch?: string; extra?: string[]; cseq?: number } = {},
) {
  return parse([
    `${method} sip:conf@127.0.0.1:15060 SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK${opts.branch ?? method};rport`,
    'Via: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bKclient;received=192.0.2.101;rport=5062',
    'Record-Route: <sip:192.0.2.10:5060;transport=udp;lr>',
    'From: <sip:alice@192.0.2.101>;tag=alice',
    `To: <sip:conf@127.0.0.1>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
    'Call-ID: demo-1',
    `CSeq: ${opts.cseq ?? 1} ${method}`,
    'Contact: <sip:alice@192.0.2.101:5062>',
    'Max-Forwards: 69',
    ...(opts.extra ?? []),
  ]) as SipRequest;
}

describe('DemoUas (builtin:sip-uas)', () => {
  let sent: Array<{ to: SipPeer; msg: SipMessage }>;
  let uas: DemoUas;
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    sent = [];
    uas = new DemoUas(SELF, { send: (to, data) => void sent.push({ to, msg: parseDatagram(data) }) });
  });
  afterEach(() => {
    uas.close();
    mock.timers.reset();
  });
  const statuses = () => sent.splice(0).map((s) => (s.msg as SipResponse).status);

  it('answers INVITE at once: 100, then 200 with SDP, its tag, Contact and the Record-Route copied', () => {
    uas.receive(request('INVITE'), PROXY);
    const [trying, ok] = sent.splice(0);
    assert.equal((trying!.msg as SipResponse).status, 100);
    const res = ok!.msg as SipResponse;
    assert.equal(res.status, 200);
    assert.deepEqual({ host: ok!.to.host, port: ok!.to.port }, PROXY, 'back to the proxy by its Via (rport)');
    assert.match(getHeader(res, 'To')!, /;tag=/);
    assert.equal(getHeader(res, 'Record-Route'), '<sip:192.0.2.10:5060;transport=udp;lr>');
    assert.equal(getHeader(res, 'Contact'), '<sip:uas@127.0.0.1:15060;transport=udp>');
    assert.equal(getHeader(res, 'Content-Type'), 'application/sdp');
    assert.match(res.body.toString(), /m=audio \d+ RTP\/AVP 0 8/);
  });

  it('retransmits the 2xx over UDP until the ACK, and answers INVITE retransmissions from memory', () => {
    uas.receive(request('INVITE'), PROXY);
    const tag = /tag=(\w+)/.exec(getHeader(sent[1]!.msg, 'To')!)![1]!;
    sent.length = 0;
    mock.timers.tick(500);
    assert.deepEqual(statuses(), [200], 'T1');
    mock.timers.tick(1000);
    assert.deepEqual(statuses(), [200], '2*T1');
    uas.receive(request('INVITE'), PROXY);
    assert.deepEqual(statuses(), [200], 'a retransmitted INVITE gets the 200 again');
    uas.receive(request('ACK', { toTag: tag, branch: 'ack' }), PROXY);
    mock.timers.tick(8000);
    assert.deepEqual(statuses(), [], 'the ACK stops the retransmissions');
    uas.receive(request('BYE', { toTag: tag, cseq: 2 }), PROXY);
    assert.deepEqual(statuses(), [200]);
    uas.receive(request('BYE', { toTag: tag, cseq: 3, branch: 'bye2' }), PROXY);
    assert.deepEqual(statuses(), [481], 'the dialog is gone');
    assert.equal(uas.stats().dialogs, 0);
  });

  it('OPTIONS, REGISTER, INFO and unknown methods', () => {
    uas.receive(request('OPTIONS'), PROXY);
    const options = sent.splice(0)[0]!.msg;
    assert.equal((options as SipResponse).status, 200);
    assert.ok(getHeaderValues(options, 'Allow').includes('SUBSCRIBE'));
    uas.receive(request('REGISTER', { extra: ['Expires: 7200'] }), PROXY);
    const reg = sent.splice(0)[0]!.msg;
    assert.equal((reg as SipResponse).status, 200);
    assert.equal(getHeader(reg, 'Expires'), '3600');
    assert.equal(getHeader(reg, 'Contact'), '<sip:alice@192.0.2.101:5062>');
    uas.receive(request('PUBLISH'), PROXY);
    uas.receive(request('FOO'), PROXY);
    assert.deepEqual(statuses(), [200, 501]);
  });

  it('SUBSCRIBE: 200 with Expires, then a NOTIFY along the route set', () => {
    uas.receive(request('SUBSCRIBE', { extra: ['Event: presence', 'Expires: 120'] }), PROXY);
    const [ok, notify] = sent.splice(0);
    assert.equal((ok!.msg as SipResponse).status, 200);
    assert.equal(getHeader(ok!.msg, 'Expires'), '120');
    const n = notify!.msg as SipRequest;
    assert.equal(n.method, 'NOTIFY');
    assert.equal(n.uri, 'sip:alice@192.0.2.101:5062');
    assert.deepEqual({ host: notify!.to.host, port: notify!.to.port }, PROXY, 'to the first Route');
    assert.equal(getHeader(n, 'Route'), '<sip:192.0.2.10:5060;transport=udp;lr>');
    assert.equal(getHeader(n, 'Subscription-State'), 'active;expires=120');
    assert.equal(getHeader(n, 'Event'), 'presence');
  });

  it('CANCEL after the answer: 200, no effect (RFC 3261 §9.2); for nothing known: 481', () => {
    uas.receive(request('INVITE'), PROXY);
    sent.length = 0;
    uas.receive(request('CANCEL', { branch: 'INVITE' }), PROXY);
    assert.deepEqual(statuses(), [200]);
    uas.receive(request('CANCEL', { branch: 'other' }), PROXY);
    assert.deepEqual(statuses(), [481]);
  });
});
