import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatSipUri, isAbsoluteUri, parseSipUri, SipErrorCode, SipParseError } from './index.ts';

describe('parseSipUri', () => {
  test('every part: sips, user, password, IPv6 host, port, params, headers', () => {
    const u = parseSipUri(
      'sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr;maddr=[2001:db8::2]?Subject=hi&Priority=urgent',
    );
    assert.equal(u.scheme, 'sips');
    assert.equal(u.user, 'alice');
    assert.equal(u.password, 'secret');
    assert.equal(u.host, '2001:db8::1');
    assert.equal(u.port, 5061);
    assert.deepEqual(
      [...u.params],
      [
        ['transport', 'tcp'],
        ['lr', null],
        ['maddr', '[2001:db8::2]'],
      ],
    );
    assert.deepEqual(u.headers, [
      { name: 'Subject', value: 'hi' },
      { name: 'Priority', value: 'urgent' },
    ]);
    assert.equal(
      formatSipUri(u),
      'sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr;maddr=[2001:db8::2]?Subject=hi&Priority=urgent',
    );
  });

  test('a user part may hold ; (telephone-subscriber), escapes stay as written', () => {
    const u = parseSipUri('sip:+1-555-0100;phone-context=example.com@gw.example.com;user=phone');
    assert.equal(u.user, '+1-555-0100;phone-context=example.com');
    assert.equal(u.host, 'gw.example.com');
    assert.equal(u.params.get('user'), 'phone');
    assert.equal(parseSipUri('sip:%61lice@atlanta.example.com').user, '%61lice');
  });

  test('no user part; scheme and parameter names are case-insensitive', () => {
    const u = parseSipUri('SIP:fe01.pool1.ebb.test;LR;Transport=UDP');
    assert.equal(u.scheme, 'sip');
    assert.equal(u.user, undefined);
    assert.equal(u.port, undefined);
    assert.equal(u.params.get('lr'), null);
    assert.equal(u.params.get('transport'), 'UDP');
    assert.equal(formatSipUri(u), 'sip:fe01.pool1.ebb.test;lr;transport=UDP');
  });

  test('IPv4 host with port, empty password', () => {
    const u = parseSipUri('sip:bob:@192.0.2.4:5060');
    assert.equal(u.password, '');
    assert.equal(u.host, '192.0.2.4');
    assert.equal(u.port, 5060);
  });

  for (const bad of [
    'tel:+15550100',
    'sip:',
    'sip:@example.com',
    'sip:example.com:99999',
    'sip:example.com:',
    'sip:bo b@example.com',
    'sip:example.com;;lr',
    'sip:example.com;lr;lr',
    'sip:example.com;transport=',
    'sip:[2001:db8::1',
    'sip:[zz]',
    'sip:example.com/path',
    'sip:example.com?novalue',
    'sip:<example.com>',
    'sip:a[1]@example.com',
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseSipUri(bad),
        (err) => err instanceof SipParseError && err.code === SipErrorCode.badUri && err.status === 400,
      );
    });
  }

  test('isAbsoluteUri accepts other schemes, refuses relative or spaced ones', () => {
    assert.ok(isAbsoluteUri('tel:+15550100'));
    assert.ok(isAbsoluteUri('urn:service:sos'));
    assert.ok(!isAbsoluteUri('example.com'));
    assert.ok(!isAbsoluteUri('sip:'));
    assert.ok(!isAbsoluteUri('sip:a b'));
    assert.ok(!isAbsoluteUri('1sip:a'));
  });
});
