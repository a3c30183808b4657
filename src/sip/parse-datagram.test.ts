import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  getHeader,
  getHeaderValues,
  isKeepAliveDatagram,
  parseDatagram,
  parseNameAddr,
  parseVia,
  SipErrorCode,
  SipParseError,
  type SipRequest,
  type SipResponse,
} from './index.ts';
import {
  bye,
  compact,
  folded,
  invite,
  notify,
  ok200,
  options,
  pidf,
  register,
  sdpOffer,
  sip,
} from './test-messages.ts';

function rejects(buf: Buffer, code: string, limits = {}): SipParseError {
  try {
    parseDatagram(buf, limits);
  } catch (err) {
    assert.ok(err instanceof SipParseError, `expected SipParseError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('parseDatagram: real-world messages', () => {
  test('INVITE with SDP', () => {
    const m = parseDatagram(invite) as SipRequest;
    assert.equal(m.kind, 'request');
    assert.equal(m.method, 'INVITE');
    assert.equal(m.uri, 'sip:bob@biloxi.example.com');
    assert.equal(m.version, 'SIP/2.0');
    assert.equal(m.headers.length, 12);
    assert.deepEqual(m.headers[0], {
      name: 'Via',
      value: 'SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport',
    });
    assert.equal(m.body.toString(), sdpOffer);
    assert.equal(getHeader(m, 'content-length'), String(Buffer.byteLength(sdpOffer)));
    assert.deepEqual(getHeaderValues(m, 'Allow'), [
      'INVITE',
      'ACK',
      'CANCEL',
      'OPTIONS',
      'BYE',
      'REFER',
      'NOTIFY',
    ]);
    assert.equal(getHeader(m, 'User-Agent'), 'Ebb-Test/1.0 (lab, bench)', 'not a list header: not split');
    assert.equal(parseVia(getHeader(m, 'v') as string).params.get('rport'), null);
  });

  test('200 OK with two Vias and Record-Route list', () => {
    const m = parseDatagram(ok200) as SipResponse;
    assert.equal(m.kind, 'response');
    assert.equal(m.status, 200);
    assert.equal(m.reason, 'OK');
    const vias = getHeaderValues(m, 'via').map(parseVia);
    assert.deepEqual(
      vias.map((v) => [v.transport, v.host, v.params.get('received')]),
      [
        ['TCP', 'edge.biloxi.example.com', '192.0.2.3'],
        ['UDP', 'pc33.atlanta.example.com', '192.0.2.101'],
      ],
    );
    assert.equal(vias[1]!.params.get('rport'), '5060');
    assert.deepEqual(getHeaderValues(m, 'Record-Route'), [
      '<sip:edge.biloxi.example.com;lr>',
      '<sip:fe01.pool1.ebb.test;lr>',
    ]);
  });

  test('BYE with Routes and a Reason whose quoted text holds a comma', () => {
    const m = parseDatagram(bye) as SipRequest;
    assert.equal(m.method, 'BYE');
    assert.deepEqual(getHeaderValues(m, 'route'), [
      '<sip:fe01.pool1.ebb.test;lr>',
      '<sip:edge.biloxi.example.com;lr>',
    ]);
    assert.deepEqual(getHeaderValues(m, 'Reason'), ['SIP;cause=503;text="maintenance, try later"']);
    assert.equal(m.body.length, 0);
  });

  test('REGISTER over IPv6 with Digest credentials kept whole', () => {
    const m = parseDatagram(register);
    assert.equal(getHeaderValues(m, 'Authorization').length, 1);
    const via = parseVia(getHeader(m, 'Via') as string);
    assert.equal(via.host, '2001:db8::9');
    assert.equal(via.port, 5061);
    const contact = parseNameAddr(getHeader(m, 'Contact') as string);
    assert.equal(contact.params.get('expires'), '7200');
    assert.equal(contact.params.get('+sip.instance'), '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"');
  });

  test('OPTIONS probe with a Request-URI without user part', () => {
    const m = parseDatagram(options) as SipRequest;
    assert.equal(m.uri, 'sip:fe01.pool1.ebb.test');
  });

  test('NOTIFY with Subscription-State and a UTF-8 body', () => {
    const m = parseDatagram(notify);
    assert.equal(getHeader(m, 'subscription-state'), 'active;expires=3599');
    assert.equal(getHeader(m, 'Event'), 'presence');
    assert.equal(m.body.toString('utf8'), pidf);
  });

  test('compact forms resolve to their long names', () => {
    const m = parseDatagram(compact);
    assert.equal(getHeader(m, 'Via'), 'SIP/2.0/UDP 192.0.2.101;branch=z9hG4bKcompact');
    assert.equal(getHeader(m, 'Call-ID'), 'compact-1@192.0.2.101');
    assert.equal(getHeader(m, 'Event'), 'presence');
    assert.deepEqual(getHeaderValues(m, 'Allow-Events'), ['presence', 'dialog']);
    assert.equal(getHeader(m, 'Supported'), 'eventlist');
    assert.equal(getHeader(m, 'subject'), 'lunch?');
    assert.equal(getHeader(m, 'Content-Type'), 'text/plain');
    assert.equal(m.body.toString(), 'hi');
    assert.equal(m.headers[0]!.name, 'v', 'original name kept');
  });

  test('folded headers unfold to one space; Vias split across a line and lines', () => {
    const m = parseDatagram(folded);
    assert.equal(getHeader(m, 'Subject'), 'a subject that goes on over three lines');
    const hosts = getHeaderValues(m, 'Via').map((v) => parseVia(v).host);
    assert.deepEqual(hosts, [
      'p3.example.com',
      'p2.example.com',
      'p1.example.com',
      'pc33.atlanta.example.com',
    ]);
    assert.equal(m.headers.filter((h) => h.name === 'Via').length, 2);
  });
});

describe('parseDatagram: framing (RFC 3261 §18.3)', () => {
  const head = [
    'OPTIONS sip:a@example.com SIP/2.0',
    'Via: SIP/2.0/UDP h;branch=z9hG4bK1',
    'Content-Length: 4',
  ];

  test('bytes beyond Content-Length are discarded', () => {
    assert.equal(parseDatagram(sip(head, 'abcdXYZ')).body.toString(), 'abcd');
  });

  test('a body shorter than Content-Length is an error with status 400 and the head', () => {
    const err = rejects(sip(head, 'ab'), SipErrorCode.truncated);
    assert.equal(err.status, 400);
    assert.equal((err.head as SipRequest).method, 'OPTIONS');
  });

  test('without Content-Length the body is the rest of the datagram', () => {
    const m = parseDatagram(sip(head.slice(0, 2), 'rest of it'));
    assert.equal(m.body.toString(), 'rest of it');
  });

  test('leading CRLFs are skipped; bare LF line ends are accepted', () => {
    const m = parseDatagram(Buffer.concat([Buffer.from('\r\n\r\n'), sip(head, 'abcd', '\n')]));
    assert.equal(m.body.toString(), 'abcd');
  });

  test('keep-alives and empty datagrams', () => {
    assert.ok(isKeepAliveDatagram(Buffer.from('\r\n\r\n')));
    assert.ok(isKeepAliveDatagram(Buffer.from([0, 0, 0, 0])));
    assert.ok(!isKeepAliveDatagram(options));
    const err = rejects(Buffer.from('\r\n'), SipErrorCode.empty);
    assert.equal(err.status, undefined);
  });

  test('a head without its blank line is truncated', () => {
    rejects(Buffer.from('OPTIONS sip:a@example.com SIP/2.0\r\nVia: x\r\n'), SipErrorCode.truncated);
  });

  test('limits: size, body, header count, line length', () => {
    const big = sip(head.slice(0, 2).concat('Content-Length: {len}'), 'x'.repeat(2000));
    assert.equal(rejects(big, SipErrorCode.tooLarge, { maxMessageSize: 1000 }).status, 513);
    assert.equal(rejects(big, SipErrorCode.bodyTooLarge, { maxBodySize: 1000 }).status, 413);
    const many = sip([...head.slice(0, 2), ...Array.from({ length: 10 }, (_, i) => `X-H${i}: ${i}`)]);
    rejects(many, SipErrorCode.tooManyHeaders, { maxHeaders: 5 });
    rejects(sip([...head.slice(0, 2), `X-Long: ${'a'.repeat(300)}`]), SipErrorCode.lineTooLong, {
      maxLineLength: 200,
    });
    // Folding cannot dodge the line limit.
    const foldedLong = sip([
      ...head.slice(0, 2),
      'X-Long: a',
      ...Array.from({ length: 5 }, () => ` ${'b'.repeat(60)}`),
    ]);
    rejects(foldedLong, SipErrorCode.lineTooLong, { maxLineLength: 200 });
  });

  test('a malformed header line is reported with the rest of the head', () => {
    const err = rejects(sip([...head, 'this line has no colon']), SipErrorCode.badHeader);
    assert.equal(err.status, 400);
    assert.equal(getHeader(err.head as SipRequest, 'Via'), 'SIP/2.0/UDP h;branch=z9hG4bK1');
  });
});
