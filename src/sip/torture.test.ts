// Torture cases in the spirit of RFC 4475, written for Ebb: each names the trap it sets.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  getHeader,
  getHeaderValues,
  parseDatagram,
  parseNameAddr,
  parseSipUri,
  parseVia,
  serializeMessage,
  SipErrorCode,
  SipParseError,
  validateRequest,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from './index.ts';
import { semantic, sip } from './test-messages.ts';

const base = (method = 'OPTIONS', uri = 'sip:bob@example.com') => [
  `${method} ${uri} SIP/2.0`,
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtort',
  'Max-Forwards: 70',
  'To: <sip:bob@example.com>',
  'From: <sip:alice@example.com>;tag=t1',
  'Call-ID: torture@192.0.2.1',
  `CSeq: 9 ${method}`,
];

function parseValid(buf: Buffer): SipMessage {
  const m = parseDatagram(buf);
  if (m.kind === 'request') validateRequest(m);
  assert.deepEqual(parseDatagram(serializeMessage(m)), semantic(m), 'round trip keeps semantics');
  return m;
}

function parseInvalid(buf: Buffer): SipParseError {
  try {
    const m = parseDatagram(buf);
    if (m.kind === 'request') validateRequest(m);
  } catch (err) {
    assert.ok(err instanceof SipParseError, String(err));
    return err;
  }
  assert.fail('expected a SipParseError');
}

describe('torture: messages that look odd but are valid', () => {
  test('whitespace everywhere it is allowed, odd header-name case, folding inside Via', () => {
    const m = parseValid(
      sip([
        'INVITE sip:bob@example.com SIP/2.0',
        'vIA  :   SIP  /  2.0  /  UDP',
        '    192.0.2.1  :  5060 ; branch = z9hG4bKws ;  rport',
        'MAX-forwards:     68   ',
        'TO:<sip:bob@example.com>',
        'from   :   "Al \\\\ \\"ice\\""    <sip:alice@example.com>  ;  tag  =  t1',
        'call-ID:torture-ws@192.0.2.1',
        'cseq:   9    INVITE',
        'Content-Length: 0',
      ]),
    );
    const via = parseVia(getHeader(m, 'Via') as string);
    assert.deepEqual(
      [via.transport, via.host, via.port, via.params.get('rport')],
      ['UDP', '192.0.2.1', 5060, null],
    );
    const from = parseNameAddr(getHeader(m, 'From') as string);
    assert.equal(from.displayName, 'Al \\ "ice"');
    assert.equal(getHeader(m, 'Max-Forwards'), '68');
  });

  test('an unknown method is a method like any other', () => {
    const m = parseValid(sip([...base('NEWMETHOD'), 'Content-Length: 0'])) as SipRequest;
    assert.equal(m.method, 'NEWMETHOD');
  });

  test('escapes and unknown params and headers in the Request-URI', () => {
    const uri = 'sip:%61lice%40home@example.com;unknownparam=value;lr?X-Header=1&Subject=a%20b';
    const m = parseValid(sip([...base('OPTIONS', uri), 'Content-Length: 0'])) as SipRequest;
    const u = parseSipUri(m.uri);
    assert.equal(u.user, '%61lice%40home');
    assert.equal(u.params.get('unknownparam'), 'value');
    assert.equal(u.headers[1]!.value, 'a%20b');
  });

  test('a tel: Request-URI is carried without being judged', () => {
    const m = parseValid(
      sip([...base('INVITE', 'tel:+1-555-0100;phone-context=example.com'), 'Content-Length: 0']),
    );
    assert.equal((m as SipRequest).uri, 'tel:+1-555-0100;phone-context=example.com');
  });

  test('empty header value, leading zeros in Content-Length, lower-case version', () => {
    const head = base();
    head[0] = 'OPTIONS sip:bob@example.com sip/2.0';
    const m = parseValid(sip([...head, 'Subject:', 'Content-Length: 0004'], 'body'));
    assert.equal(getHeader(m, 'Subject'), '');
    assert.equal(m.body.toString(), 'body');
    assert.equal(m.version, 'SIP/2.0');
  });

  test('a body holding CRLFCRLF, NUL and non-UTF-8 bytes is opaque', () => {
    const body = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0xff, 0xfe, 0x41]);
    const head = Buffer.from(
      [...base('MESSAGE'), `Content-Length: ${body.length}`].join('\r\n') + '\r\n\r\n',
    );
    const m = parseValid(Buffer.concat([head, body]));
    assert.ok(m.body.equals(body));
  });

  test('a header line of nearly 8 KB and 60 Vias in one line', () => {
    const vias = Array.from(
      { length: 60 },
      (_, i) => `SIP/2.0/UDP h${i}.example.com;branch=z9hG4bK${i}`,
    ).join(', ');
    const head = base();
    head[1] = `Via: ${vias}`;
    const m = parseValid(sip([...head, `X-Long: ${'z'.repeat(8000)}`, 'Content-Length: 0']));
    assert.equal(getHeaderValues(m, 'Via').length, 60);
    assert.equal(getHeader(m, 'X-Long')?.length, 8000);
  });

  test('IPv6 in Request-URI, Via, Contact and received', () => {
    const head = base('REGISTER', 'sip:[2001:db8::10]');
    head[1] = 'Via: SIP/2.0/UDP [2001:db8::9];branch=z9hG4bK6;received=2001:db8::9';
    const m = parseValid(
      sip([...head, 'Contact: <sip:bob@[2001:db8::9]:5070>;expires=60', 'Content-Length: 0']),
    );
    assert.equal(parseSipUri((m as SipRequest).uri).host, '2001:db8::10');
    assert.equal(parseSipUri(parseNameAddr(getHeader(m, 'Contact') as string).uri).port, 5070);
  });

  test('quoted parameter values holding ; , and = do not split', () => {
    const m = parseValid(
      sip([...base(), 'Reason: Q.850;cause=16;text="Normal; call, clearing=yes"', 'Content-Length: 0']),
    );
    assert.deepEqual(getHeaderValues(m, 'Reason'), ['Q.850;cause=16;text="Normal; call, clearing=yes"']);
  });

  test('responses: empty reason, UTF-8 reason, lower-case header names', () => {
    const lines = [
      'SIP/2.0 200 ',
      'via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1',
      'call-id: x',
      'cseq: 1 OPTIONS',
    ];
    const empty = parseValid(
      sip([...lines, 'to: <sip:a@b>;tag=1', 'from: <sip:c@d>;tag=2', 'content-length: 0']),
    ) as SipResponse;
    assert.equal(empty.reason, '');
    const noSpace = parseDatagram(
      sip(['SIP/2.0 180', ...lines.slice(1), 'Content-Length: 0']),
    ) as SipResponse;
    assert.equal(noSpace.status, 180);
    const utf8 = parseValid(
      sip(['SIP/2.0 486 Très occupé', ...lines.slice(1), 'Content-Length: 0']),
    ) as SipResponse;
    assert.equal(utf8.reason, 'Très occupé');
  });
});

describe('torture: messages that must be refused', () => {
  const cases: [string, Buffer, string, number | undefined][] = [
    [
      'Content-Length larger than the datagram',
      sip([...base(), 'Content-Length: 50'], 'short'),
      SipErrorCode.truncated,
      400,
    ],
    ['negative Content-Length', sip([...base(), 'Content-Length: -5']), SipErrorCode.badContentLength, 400],
    ['Content-Length with junk', sip([...base(), 'Content-Length: 12a']), SipErrorCode.badContentLength, 400],
    [
      'two Content-Lengths that disagree',
      sip([...base(), 'Content-Length: 0', 'l: 4'], 'body'),
      SipErrorCode.badContentLength,
      400,
    ],
    [
      'absurd Content-Length',
      sip([...base(), 'Content-Length: 99999999999999999999']),
      SipErrorCode.bodyTooLarge,
      413,
    ],
    [
      'space inside the Request-URI',
      sip(base('OPTIONS', 'sip:bob@exa mple.com')),
      SipErrorCode.badStartLine,
      400,
    ],
    [
      'double space in the request line',
      sip(['OPTIONS  sip:bob@example.com SIP/2.0', ...base().slice(1)]),
      SipErrorCode.badStartLine,
      400,
    ],
    [
      'SIP/7.0 request',
      sip(['OPTIONS sip:bob@example.com SIP/7.0', ...base().slice(1)]),
      SipErrorCode.badVersion,
      505,
    ],
    ['SIP/3.0 response', sip(['SIP/3.0 200 OK', ...base().slice(1)]), SipErrorCode.badVersion, 505],
    ['status 099', sip(['SIP/2.0 099 Early', ...base().slice(1)]), SipErrorCode.badStartLine, 400],
    ['status 700', sip(['SIP/2.0 700 Late', ...base().slice(1)]), SipErrorCode.badStartLine, 400],
    ['two-digit status', sip(['SIP/2.0 20 OK', ...base().slice(1)]), SipErrorCode.badStartLine, 400],
    [
      'method with @',
      sip(['INV@ITE sip:bob@example.com SIP/2.0', ...base().slice(1)]),
      SipErrorCode.badStartLine,
      400,
    ],
    [
      'Request-URI without scheme',
      sip(['OPTIONS bob@example.com SIP/2.0', ...base().slice(1)]),
      SipErrorCode.badStartLine,
      400,
    ],
    [
      'Request-URI in angle brackets',
      sip(['OPTIONS <sip:bob@example.com> SIP/2.0', ...base().slice(1)]),
      SipErrorCode.badStartLine,
      400,
    ],
    [
      'header line without colon',
      sip([...base(), 'NoColonHere', 'Content-Length: 0']),
      SipErrorCode.badHeader,
      400,
    ],
    [
      'space inside a header name',
      sip([...base(), 'Max Forwards: 70', 'Content-Length: 0']),
      SipErrorCode.badHeader,
      400,
    ],
    [
      'continuation right after the start line',
      sip([base()[0]!, ' folded: no', ...base().slice(1)]),
      SipErrorCode.badHeader,
      400,
    ],
    [
      'NUL inside a header',
      sip([...base(), 'Subject: a\0b', 'Content-Length: 0']),
      SipErrorCode.badHeader,
      400,
    ],
    [
      'bare CR inside a header',
      sip([...base(), 'Subject: a\rVia: SIP/2.0/UDP evil', 'Content-Length: 0']),
      SipErrorCode.badHeader,
      400,
    ],
    ['a header line where the start line should be', sip(base().slice(1)), SipErrorCode.badStartLine, 400],
    [
      'no blank line after the headers',
      Buffer.from(base().join('\r\n') + '\r\n'),
      SipErrorCode.truncated,
      400,
    ],
    [
      'CSeq method differs from the request method',
      sip([...base('INVITE').slice(0, 6), 'CSeq: 9 ACK', 'Content-Length: 0']),
      SipErrorCode.cseqMismatch,
      400,
    ],
    [
      'CSeq number of 2**31',
      sip([...base().slice(0, 6), 'CSeq: 2147483648 OPTIONS', 'Content-Length: 0']),
      SipErrorCode.badCSeq,
      400,
    ],
    [
      'To twice',
      sip([...base(), 'To: <sip:carol@example.com>', 'Content-Length: 0']),
      SipErrorCode.duplicateHeader,
      400,
    ],
    [
      'Max-Forwards over 255',
      sip([...base(), 'Max-Forwards: 256', 'Content-Length: 0'].filter((l) => l !== 'Max-Forwards: 70')),
      SipErrorCode.badMaxForwards,
      400,
    ],
    [
      'Via without host',
      sip([
        'OPTIONS sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/UDP ;branch=z9hG4bK1',
        ...base().slice(2),
        'Content-Length: 0',
      ]),
      SipErrorCode.badVia,
      400,
    ],
    [
      'unterminated display name',
      sip([
        ...base().slice(0, 4),
        'From: "Alice <sip:alice@example.com>;tag=1',
        ...base().slice(5),
        'Content-Length: 0',
      ]),
      SipErrorCode.badNameAddr,
      400,
    ],
    ['only CRLFs', Buffer.from('\r\n\r\n\r\n'), SipErrorCode.empty, undefined],
  ];
  for (const [name, buf, code, status] of cases) {
    test(name, () => {
      const err = parseInvalid(buf);
      assert.equal(err.code, code, err.message);
      assert.equal(err.status, status);
    });
  }
});
