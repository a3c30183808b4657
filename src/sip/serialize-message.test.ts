import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addRecordRoute,
  cloneMessage,
  createRequest,
  decrementMaxForwards,
  getHeader,
  getHeaderValues,
  getMaxForwards,
  parseDatagram,
  parseSipUri,
  prependRoute,
  prependVia,
  removeTopRoute,
  removeTopVia,
  serializeMessage,
  setRequestUri,
  SipErrorCode,
  SipParseError,
  SipStreamParser,
  topVia,
  type SipMessage,
  type SipRequest,
} from './index.ts';
import { allFixtures, bye, folded, invite, ok200 } from './test-messages.ts';

describe('serializeMessage', () => {
  for (const [name, buf] of Object.entries(allFixtures)) {
    test(`${name}: parse → serialize → parse keeps every field`, () => {
      const first = parseDatagram(buf);
      const again = parseDatagram(serializeMessage(first));
      assert.deepEqual(again, first);
    });
  }

  test('well-formed, unfolded input comes back byte for byte', () => {
    assert.ok(serializeMessage(parseDatagram(invite)).equals(invite));
    assert.ok(serializeMessage(parseDatagram(ok200)).equals(ok200));
  });

  test('folded lines come out unfolded', () => {
    const out = serializeMessage(parseDatagram(folded)).toString();
    assert.match(out, /\r\nSubject: a subject that goes on over three lines\r\n/);
  });

  test('Content-Length follows the body, keeps its place and compact name; extra ones are dropped', () => {
    const m = parseDatagram(allFixtures.compact!);
    m.body = Buffer.from('changed body');
    const out = serializeMessage(m).toString();
    assert.match(out, /\r\nl: 12\r\n\r\nchanged body$/);
    const twice = createRequest('OPTIONS', 'sip:a@b', [
      { name: 'Content-Length', value: '5' },
      { name: 'Content-Length', value: '7' },
    ]);
    assert.equal(serializeMessage(twice).toString(), 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    const none = createRequest('OPTIONS', 'sip:a@b', [], Buffer.from('xy'));
    assert.equal(serializeMessage(none).toString(), 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nxy');
  });

  test('values that would break framing are refused', () => {
    const inject = (m: SipMessage) =>
      assert.throws(
        () => serializeMessage(m),
        (err) => err instanceof SipParseError,
      );
    inject(createRequest('OPTIONS', 'sip:a@b', [{ name: 'X', value: 'a\r\nb: c' }]));
    inject(createRequest('OPT IONS', 'sip:a@b'));
    inject(createRequest('OPTIONS', 'sip:a@b SIP/2.0\r\nVia: x'));
    const res = parseDatagram(ok200);
    if (res.kind === 'response') res.reason = 'OK\r\nX: y';
    inject(res);
  });

  test('serialized output frames the same on a stream', () => {
    const messages: SipMessage[] = [];
    const parser = new SipStreamParser({
      onMessage: (m) => messages.push(m),
      onError: (e) => assert.fail(e),
    });
    const parsed = Object.values(allFixtures).map((b) => parseDatagram(b));
    parser.push(Buffer.concat(parsed.map(serializeMessage)));
    assert.deepEqual(messages, parsed);
  });
});

describe('proxy mutations', () => {
  test('prepend and remove the top Via (RFC 3261 §16.6 step 8, §16.7 step 3)', () => {
    const m = parseDatagram(allFixtures.folded!);
    prependVia(m, 'SIP/2.0/TCP fe01.pool1.ebb.test;branch=z9hG4bKebb');
    assert.equal(topVia(m)?.host, 'fe01.pool1.ebb.test');
    assert.equal(removeTopVia(m), 'SIP/2.0/TCP fe01.pool1.ebb.test;branch=z9hG4bKebb');
    assert.equal(removeTopVia(m), 'SIP/2.0/UDP p3.example.com;branch=z9hG4bKp3');
    assert.equal(topVia(m)?.host, 'p2.example.com');
    assert.equal(getHeaderValues(parseDatagram(serializeMessage(m)), 'Via').length, 3);
    prependVia(m, {
      protocol: 'SIP',
      version: '2.0',
      transport: 'UDP',
      host: '2001:db8::1',
      port: 5060,
      params: new Map([
        ['branch', 'z9hG4bKx'],
        ['rport', null],
      ]),
    });
    assert.equal(getHeader(m, 'Via'), 'SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport');
  });

  test('Record-Route goes above existing ones; Route removal pops the top', () => {
    const m = parseDatagram(ok200);
    addRecordRoute(m, { displayName: undefined, uri: 'sip:fe02.pool1.ebb.test;lr', params: new Map() });
    assert.deepEqual(getHeaderValues(m, 'Record-Route')[0], '<sip:fe02.pool1.ebb.test;lr>');
    assert.equal(getHeaderValues(m, 'Record-Route').length, 3);
    const b = parseDatagram(bye);
    assert.equal(removeTopRoute(b), '<sip:fe01.pool1.ebb.test;lr>');
    prependRoute(b, '<sip:upstream.example.com;lr>');
    assert.deepEqual(getHeaderValues(b, 'Route'), [
      '<sip:upstream.example.com;lr>',
      '<sip:edge.biloxi.example.com;lr>',
    ]);
  });

  test('replace the Request-URI', () => {
    const m = parseDatagram(invite) as SipRequest;
    setRequestUri(m, parseSipUri('sip:bob@192.0.2.20:5080;transport=tcp'));
    assert.equal(m.uri, 'sip:bob@192.0.2.20:5080;transport=tcp');
    setRequestUri(m, 'tel:+15550100');
    assert.throws(
      () => setRequestUri(m, 'not a uri'),
      (err) => err instanceof SipParseError && err.code === SipErrorCode.badUri,
    );
  });

  test('Max-Forwards: decrement, add 70 when absent, refuse garbage', () => {
    const m = parseDatagram(invite) as SipRequest;
    assert.equal(decrementMaxForwards(m), 69);
    assert.equal(getHeader(m, 'Max-Forwards'), '69');
    const none = createRequest('OPTIONS', 'sip:a@b');
    assert.equal(getMaxForwards(none), undefined);
    assert.equal(decrementMaxForwards(none), 70);
    const zero = createRequest('OPTIONS', 'sip:a@b', [{ name: 'Max-Forwards', value: '0' }]);
    assert.equal(decrementMaxForwards(zero), 0);
    for (const v of ['256', 'ten', '-1', '1 2']) {
      const bad = createRequest('OPTIONS', 'sip:a@b', [{ name: 'Max-Forwards', value: v }]);
      assert.throws(
        () => getMaxForwards(bad),
        (err) => err instanceof SipParseError && err.code === SipErrorCode.badMaxForwards,
      );
    }
  });

  test('cloneMessage gives an independent copy (RFC 3261 §16.6 step 1)', () => {
    const m = parseDatagram(invite);
    const c = cloneMessage(m);
    prependVia(c, 'SIP/2.0/UDP me;branch=z9hG4bKc');
    c.headers[1]!.value = 'changed';
    c.body[0] = 0x21;
    assert.deepEqual(m, parseDatagram(invite));
  });
});
