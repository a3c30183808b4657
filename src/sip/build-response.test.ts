import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildResponse,
  getHeader,
  getHeaderLines,
  getHeaderValues,
  parseDatagram,
  parseNameAddr,
  reasonPhrase,
  serializeMessage,
  SipParseError,
  validateResponse,
  type SipRequest,
} from './index.ts';
import { bye, folded, invite, options, sip } from './test-messages.ts';

const req = (b: Buffer) => parseDatagram(b) as SipRequest;

describe('buildResponse (RFC 3261 §8.2.6)', () => {
  test('503 with Retry-After: copies Via, From, To, Call-ID, CSeq and adds a To-tag', () => {
    const r = req(invite);
    const res = buildResponse(r, 503, { retryAfter: 30, toTag: 'ebb1' });
    assert.equal(res.status, 503);
    assert.equal(res.reason, 'Service Unavailable');
    assert.deepEqual(
      res.headers.map((h) => h.name),
      ['Via', 'To', 'From', 'Call-ID', 'CSeq', 'Retry-After'],
    );
    assert.equal(getHeader(res, 'To'), 'Bob <sip:bob@biloxi.example.com>;tag=ebb1');
    assert.equal(getHeader(res, 'From'), getHeader(r, 'From'));
    assert.equal(getHeader(res, 'Retry-After'), '30');
    const e = validateResponse(res);
    assert.deepEqual(e.cseq, { seq: 314159, method: 'INVITE' });
  });

  test('every Via in order, including several on one line', () => {
    const r = req(folded);
    const res = buildResponse(r, 200);
    assert.deepEqual(getHeaderValues(res, 'Via'), getHeaderValues(r, 'Via'));
  });

  test('random To-tag by default; an existing To-tag is kept', () => {
    const a = parseNameAddr(getHeader(buildResponse(req(invite), 486), 'To') as string).params.get('tag');
    const b = parseNameAddr(getHeader(buildResponse(req(invite), 486), 'To') as string).params.get('tag');
    assert.match(a ?? '', /^[0-9a-f]{16}$/);
    assert.notEqual(a, b);
    assert.equal(getHeader(buildResponse(req(bye), 200), 'To'), getHeader(req(bye), 'To'));
  });

  test('100 Trying gets no To-tag and echoes Timestamp (RFC 3261 §8.2.6.1)', () => {
    const r = req(invite);
    r.headers.push({ name: 'Timestamp', value: '54.3' });
    const res = buildResponse(r, 100);
    assert.equal(getHeader(res, 'To'), 'Bob <sip:bob@biloxi.example.com>');
    assert.equal(getHeader(res, 'Timestamp'), '54.3');
    assert.equal(getHeader(buildResponse(r, 180), 'Timestamp'), undefined);
  });

  test('302 with Contacts, extra headers and a body', () => {
    const res = buildResponse(req(options), 302, {
      contact: ['<sip:fe02.pool1.ebb.test>', '<sip:fe03.pool1.ebb.test>;q=0.5'],
      headers: [{ name: 'Reason', value: 'SIP;cause=503;text="maintenance"' }],
      body: Buffer.from('moved'),
      reason: 'Moved Temporarily (maintenance)',
    });
    assert.equal(getHeaderLines(res, 'Contact').length, 2);
    const wire = serializeMessage(res).toString();
    assert.match(wire, /^SIP\/2\.0 302 Moved Temporarily \(maintenance\)\r\n/);
    assert.match(wire, /\r\nContent-Length: 5\r\n\r\nmoved$/);
  });

  test('answers a request whose head came with a parse error', () => {
    const bad = sip([
      'INVITE sip:bob@biloxi.example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbad',
      'To: <sip:bob@biloxi.example.com',
      'From: <sip:a@b.example.com>;tag=1',
      'Call-ID: bad-1',
      'CSeq: 1 INVITE',
      'broken header line',
      'Content-Length: 0',
    ]);
    let head: SipRequest | undefined;
    try {
      parseDatagram(bad);
    } catch (err) {
      assert.ok(err instanceof SipParseError);
      head = err.head as SipRequest;
      const res = buildResponse(head, err.status as number);
      assert.equal(res.status, 400);
      assert.equal(getHeader(res, 'To'), '<sip:bob@biloxi.example.com', 'unparsable To copied as is');
      assert.equal(getHeader(res, 'Via'), 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbad');
    }
    assert.ok(head);
  });

  test('refuses impossible statuses and unsafe extra headers', () => {
    assert.throws(() => buildResponse(req(options), 99), RangeError);
    assert.throws(() => buildResponse(req(options), 200.5), RangeError);
    assert.throws(() => buildResponse(req(options), 200, { contact: '<sip:a@b>\r\nX: y' }), SipParseError);
  });

  test('reason phrases', () => {
    assert.equal(reasonPhrase(513), 'Message Too Large');
    assert.equal(reasonPhrase(499), 'Client Error');
  });
});
