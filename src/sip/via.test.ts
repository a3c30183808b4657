import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatCSeq, formatVia, parseCSeq, parseVia, SipErrorCode, SipParseError } from './index.ts';

describe('parseVia', () => {
  test('transport, host, port, branch, rport without value', () => {
    const v = parseVia('SIP/2.0/udp pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport');
    assert.equal(v.protocol, 'SIP');
    assert.equal(v.version, '2.0');
    assert.equal(v.transport, 'UDP');
    assert.equal(v.host, 'pc33.atlanta.example.com');
    assert.equal(v.port, 5060);
    assert.equal(v.params.get('branch'), 'z9hG4bK776asdhds');
    assert.equal(v.params.get('rport'), null);
    assert.ok(!v.params.has('received'));
  });

  test('received and rport filled in (RFC 3581), IPv6 sent-by and received', () => {
    const v = parseVia('SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bK1;received=2001:db8::9;rport=40000');
    assert.equal(v.host, '2001:db8::9');
    assert.equal(v.port, 5061);
    assert.equal(v.params.get('received'), '2001:db8::9');
    assert.equal(v.params.get('rport'), '40000');
    assert.equal(
      formatVia(v),
      'SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bK1;received=2001:db8::9;rport=40000',
    );
  });

  test('whitespace around / : ; = is legal (RFC 3261 §25.1)', () => {
    const v = parseVia('SIP / 2.0 / WSS   edge.example.com : 443 ; branch = z9hG4bKws ; x="a;b"');
    assert.equal(v.transport, 'WSS');
    assert.equal(v.port, 443);
    assert.equal(v.params.get('branch'), 'z9hG4bKws');
    assert.equal(v.params.get('x'), '"a;b"');
    assert.equal(formatVia(v), 'SIP/2.0/WSS edge.example.com:443;branch=z9hG4bKws;x="a;b"');
  });

  test('no port, no params', () => {
    const v = parseVia('SIP/2.0/UDP 192.0.2.1');
    assert.equal(v.port, undefined);
    assert.equal(v.params.size, 0);
  });

  for (const bad of [
    'SIP/2.0/UDP',
    'SIP/2.0 host',
    'SIP/2.0/UDP host:70000',
    'SIP/2.0/UDP host;branch',
    'SIP/2.0/UDP host;branch=1;branch=2',
    'SIP/2.0/UDP host extra',
    'SIP//UDP host',
    'SIP/2.0/UDPhost',
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseVia(bad),
        (err) => err instanceof SipParseError && err.code === SipErrorCode.badVia && err.field === 'Via',
      );
    });
  }
});

describe('parseCSeq', () => {
  test('number and method, whitespace tolerated', () => {
    assert.deepEqual(parseCSeq('314159 INVITE'), { seq: 314159, method: 'INVITE' });
    assert.deepEqual(parseCSeq('  1 \t ACK '), { seq: 1, method: 'ACK' });
    assert.equal(formatCSeq({ seq: 2147483647, method: 'BYE' }), '2147483647 BYE');
    assert.deepEqual(parseCSeq('2147483647 BYE'), { seq: 2147483647, method: 'BYE' });
  });

  for (const bad of ['INVITE 1', '-1 INVITE', '2147483648 INVITE', '1', '1 INV ITE', '', '1 INV<ITE']) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseCSeq(bad),
        (err) => err instanceof SipParseError && err.code === SipErrorCode.badCSeq,
      );
    });
  }
});
