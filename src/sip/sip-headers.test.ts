import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addHeader,
  compactHeaderForms,
  createRequest,
  getHeader,
  getHeaderValues,
  hasHeader,
  headerKey,
  isListHeader,
  prependHeaderValue,
  removeFirstHeaderValue,
  removeHeader,
  sameHeaderName,
  setHeader,
  SipErrorCode,
  SipParseError,
  splitHeaderValues,
} from './index.ts';

describe('header names', () => {
  test('every compact form of RFC 3261 §7.3.3 and its extensions maps to its long name', () => {
    const expected: Record<string, string> = {
      i: 'call-id',
      m: 'contact',
      e: 'content-encoding',
      l: 'content-length',
      c: 'content-type',
      f: 'from',
      s: 'subject',
      k: 'supported',
      t: 'to',
      v: 'via',
      o: 'event',
      u: 'allow-events',
      r: 'refer-to',
      b: 'referred-by',
      x: 'session-expires',
    };
    for (const [c, long] of Object.entries(expected)) {
      assert.equal(headerKey(c), long);
      assert.equal(headerKey(c.toUpperCase()), long);
      assert.equal(compactHeaderForms[c as keyof typeof compactHeaderForms].toLowerCase(), long);
    }
    assert.equal(headerKey('X-Custom'), 'x-custom');
    assert.equal(headerKey('q'), 'q', 'an unknown one-letter name stays itself');
    assert.ok(sameHeaderName('CALL-ID', 'i'));
    assert.ok(isListHeader('v') && !isListHeader('Date'));
  });
});

describe('splitHeaderValues', () => {
  test('commas inside quotes and <> do not split', () => {
    assert.deepEqual(splitHeaderValues('"Doe, J" <sip:a@b;x=1,2>;q=1, <sip:c@d>'), [
      '"Doe, J" <sip:a@b;x=1,2>;q=1',
      '<sip:c@d>',
    ]);
    assert.deepEqual(splitHeaderValues('a ,, b ,'), ['a', 'b']);
    assert.deepEqual(splitHeaderValues('"esc \\" , still" x'), ['"esc \\" , still" x']);
    assert.deepEqual(splitHeaderValues(''), []);
  });
});

describe('header access and mutation', () => {
  const make = () =>
    createRequest('INVITE', 'sip:b@example.com', [
      { name: 'v', value: 'SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2' },
      { name: 'VIA', value: 'SIP/2.0/UDP c;branch=z9hG4bK3' },
      { name: 'Date', value: 'Sat, 13 Nov 2010 23:29:00 GMT' },
      { name: 'Content-Length', value: '0' },
    ]);

  test('get first/all values across names, case and compact forms', () => {
    const m = make();
    assert.equal(getHeader(m, 'Via'), 'SIP/2.0/UDP a;branch=z9hG4bK1');
    assert.deepEqual(getHeaderValues(m, 'via').length, 3);
    assert.equal(getHeader(m, 'date'), 'Sat, 13 Nov 2010 23:29:00 GMT', 'Date is not a list');
    assert.equal(getHeader(m, 'l'), '0');
    assert.equal(getHeader(m, 'Route'), undefined);
    assert.ok(hasHeader(m, 'V') && !hasHeader(m, 'Route'));
  });

  test('removeFirstHeaderValue rewrites a multi-value line, then removes lines', () => {
    const m = make();
    assert.equal(removeFirstHeaderValue(m, 'Via'), 'SIP/2.0/UDP a;branch=z9hG4bK1');
    assert.deepEqual(m.headers[0], { name: 'v', value: 'SIP/2.0/UDP b;branch=z9hG4bK2' });
    assert.equal(removeFirstHeaderValue(m, 'Via'), 'SIP/2.0/UDP b;branch=z9hG4bK2');
    assert.equal(removeFirstHeaderValue(m, 'Via'), 'SIP/2.0/UDP c;branch=z9hG4bK3');
    assert.equal(removeFirstHeaderValue(m, 'Via'), undefined);
    assert.equal(m.headers.length, 2);
  });

  test('removeFirstHeaderValue skips empty lines', () => {
    const m = createRequest('BYE', 'sip:a@b', [
      { name: 'Route', value: '' },
      { name: 'Route', value: '<sip:p;lr>' },
    ]);
    assert.equal(removeFirstHeaderValue(m, 'Route'), '<sip:p;lr>');
    assert.equal(m.headers.length, 0);
  });

  test('prepend, set, remove, add', () => {
    const m = make();
    prependHeaderValue(m, 'Via', 'SIP/2.0/TCP me;branch=z9hG4bKme');
    assert.equal(getHeader(m, 'Via'), 'SIP/2.0/TCP me;branch=z9hG4bKme');
    prependHeaderValue(m, 'Record-Route', '<sip:me;lr>');
    assert.equal(m.headers[0]!.name, 'Record-Route');
    setHeader(m, 'Max-Forwards', '69');
    setHeader(m, 'max-forwards', '68');
    assert.deepEqual(getHeaderValues(m, 'Max-Forwards'), ['68']);
    assert.equal(removeHeader(m, 'via'), 3);
    addHeader(m, 'X-Ebb', 'yes');
    assert.equal(m.headers.at(-1)?.value, 'yes');
  });

  test('header injection is refused', () => {
    const m = make();
    for (const [name, value] of [
      ['X-Evil', 'a\r\nVia: SIP/2.0/UDP evil'],
      ['X-Evil', 'a\nb'],
      ['X-Evil', 'nul\0'],
      ['Bad Name', 'v'],
      ['Bad:Name', 'v'],
      ['', 'v'],
    ] as const) {
      assert.throws(
        () => addHeader(m, name, value),
        (err) => err instanceof SipParseError && err.code === SipErrorCode.badHeader,
      );
    }
  });
});
