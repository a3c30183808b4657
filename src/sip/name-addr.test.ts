import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatNameAddr, parseNameAddr, SipErrorCode, SipParseError } from './index.ts';

describe('parseNameAddr', () => {
  test('quoted display name with escapes, tag', () => {
    const na = parseNameAddr('"Alice \\"Al\\" Smith" <sip:alice@atlanta.example.com>;tag=1928301774');
    assert.equal(na.displayName, 'Alice "Al" Smith');
    assert.equal(na.uri, 'sip:alice@atlanta.example.com');
    assert.equal(na.params.get('tag'), '1928301774');
    assert.equal(formatNameAddr(na), '"Alice \\"Al\\" Smith" <sip:alice@atlanta.example.com>;tag=1928301774');
  });

  test('unquoted display name of several tokens, UTF-8 tolerated', () => {
    assert.equal(parseNameAddr('Bob  Jones <sip:bob@b.example.com>').displayName, 'Bob Jones');
    assert.equal(parseNameAddr('Müller <sip:m@b.example.com>').displayName, 'Müller');
  });

  test('addr-spec form: trailing params belong to the header (RFC 3261 §20.10)', () => {
    const na = parseNameAddr('sip:bob@biloxi.example.com;tag=xyz;user=phone');
    assert.equal(na.displayName, undefined);
    assert.equal(na.uri, 'sip:bob@biloxi.example.com');
    assert.deepEqual(
      [...na.params],
      [
        ['tag', 'xyz'],
        ['user', 'phone'],
      ],
    );
    assert.equal(formatNameAddr(na), '<sip:bob@biloxi.example.com>;tag=xyz;user=phone');
  });

  test('URI params inside <> stay in the URI', () => {
    const na = parseNameAddr('<sip:fe01.pool1.ebb.test;lr>');
    assert.equal(na.uri, 'sip:fe01.pool1.ebb.test;lr');
    assert.equal(na.params.size, 0);
  });

  test('Contact params, tel: URIs, empty quoted name, whitespace around ; and =', () => {
    const c = parseNameAddr('<sip:a@192.0.2.1>;expires=3600;q=0.7');
    assert.equal(c.params.get('q'), '0.7');
    assert.equal(parseNameAddr('<tel:+15550100>;tag=1').uri, 'tel:+15550100');
    assert.equal(parseNameAddr('"" <sip:a@b.example.com>').displayName, '');
    assert.equal(parseNameAddr('<sip:a@b.example.com> ; tag = 123 ').params.get('tag'), '123');
  });

  for (const bad of [
    '"Alice <sip:a@b.example.com>',
    '<sip:a@b.example.com',
    '<>',
    'Alice@home <sip:a@b.example.com>',
    '<sip:a@b.example.com> junk',
    '<sip:a@b.example.com>;tag=1;tag=2',
    '<sip:a@b.example.com>;tag=',
    '"Alice" sip:a@b.example.com',
    '*',
    '',
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseNameAddr(bad, 'To'),
        (err) => err instanceof SipParseError && err.code === SipErrorCode.badNameAddr && err.field === 'To',
      );
    });
  }
});
