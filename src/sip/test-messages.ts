// Real-world-shaped SIP messages for the tests (written for Ebb, addresses from RFC 5737/3849 ranges).
// `{len}` in a head line is replaced by the body's byte length.

export function sip(head: string[], body = '', eol = '\r\n'): Buffer {
  const len = Buffer.byteLength(body);
  return Buffer.from(head.map((l) => l.replace('{len}', String(len))).join(eol) + eol + eol + body, 'utf8');
}

export const sdpOffer = [
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 192.0.2.101',
  's=-',
  'c=IN IP4 192.0.2.101',
  't=0 0',
  'm=audio 49172 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=sendrecv',
  '',
].join('\r\n');

export const invite = sip(
  [
    'INVITE sip:bob@biloxi.example.com SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@biloxi.example.com>',
    'From: "Alice A." <sip:alice@atlanta.example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@192.0.2.101:5060;transport=udp>',
    'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY',
    'Supported: replaces, timer',
    'User-Agent: Ebb-Test/1.0 (lab, bench)',
    'Content-Type: application/sdp',
    'Content-Length: {len}',
  ],
  sdpOffer,
);

export const ok200 = sip(
  [
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/TCP edge.biloxi.example.com:5060;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.101',
    'Record-Route: <sip:edge.biloxi.example.com;lr>, <sip:fe01.pool1.ebb.test;lr>',
    'To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf',
    'From: "Alice A." <sip:alice@atlanta.example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:bob@192.0.2.4>',
    'Content-Type: application/sdp',
    'Content-Length: {len}',
  ],
  sdpOffer.replaceAll('alice', 'bob').replaceAll('192.0.2.101', '192.0.2.4'),
);

export const bye = sip([
  'BYE sip:alice@192.0.2.101:5060;transport=udp SIP/2.0',
  'Via: SIP/2.0/TCP 192.0.2.4:5060;branch=z9hG4bKnashds7',
  'Max-Forwards: 70',
  'Route: <sip:fe01.pool1.ebb.test;lr>',
  'Route: <sip:edge.biloxi.example.com;lr>',
  'From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf',
  'To: "Alice A." <sip:alice@atlanta.example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 231 BYE',
  'Reason: SIP;cause=503;text="maintenance, try later"',
  'Content-Length: 0',
]);

export const register = sip([
  'REGISTER sip:registrar.biloxi.example.com SIP/2.0',
  'Via: SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKnashds7;rport',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.example.com>',
  'From: Bob <sip:bob@biloxi.example.com>;tag=456248',
  'Call-ID: 843817637684230@998sdasdh09',
  'CSeq: 1826 REGISTER',
  'Contact: <sip:bob@[2001:db8::9]:5061;transport=tls>;expires=7200;q=0.7;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
  'Authorization: Digest username="bob", realm="biloxi.example.com", nonce="dcd98b7102dd2f0e", uri="sip:registrar.biloxi.example.com", response="6629fae49393a05397450978507c4ef1"',
  'Expires: 7200',
  'Content-Length: 0',
]);

export const options = sip([
  'OPTIONS sip:fe01.pool1.ebb.test SIP/2.0',
  'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-probe-1',
  'Max-Forwards: 70',
  'From: <sip:kamailio@198.51.100.7>;tag=probe1',
  'To: <sip:fe01.pool1.ebb.test>',
  'Call-ID: probe-1@198.51.100.7',
  'CSeq: 10 OPTIONS',
  'Accept: application/sdp',
  'Content-Length: 0',
]);

export const pidf =
  '<?xml version="1.0" encoding="UTF-8"?>\r\n' +
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@biloxi.example.com">\r\n' +
  '  <tuple id="t1"><status><basic>open</basic></status><note>Caf\u00e9 \u2615</note></tuple>\r\n' +
  '</presence>\r\n';

export const notify = sip(
  [
    'NOTIFY sip:alice@192.0.2.101:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnotify1',
    'Max-Forwards: 70',
    'From: <sip:bob@biloxi.example.com>;tag=ffd2',
    'To: <sip:alice@atlanta.example.com>;tag=xfg9',
    'Call-ID: 2010b5cb@192.0.2.101',
    'CSeq: 8 NOTIFY',
    'Event: presence',
    'Subscription-State: active;expires=3599',
    'Contact: <sip:bob@192.0.2.4>',
    'Content-Type: application/pidf+xml',
    'Content-Length: {len}',
  ],
  pidf,
);

/** Compact forms everywhere (RFC 3261 §7.3.3), as some mobile stacks send to save bytes. */
export const compact = sip(
  [
    'SUBSCRIBE sip:bob@biloxi.example.com SIP/2.0',
    'v: SIP/2.0/UDP 192.0.2.101;branch=z9hG4bKcompact',
    'Max-Forwards: 70',
    'f: <sip:alice@atlanta.example.com>;tag=c1',
    't: <sip:bob@biloxi.example.com>',
    'i: compact-1@192.0.2.101',
    'CSeq: 1 SUBSCRIBE',
    'm: <sip:alice@192.0.2.101>',
    'o: presence',
    'u: presence, dialog',
    'k: eventlist',
    's: lunch?',
    'c: text/plain',
    'l: {len}',
  ],
  'hi',
);

/** Folded headers (RFC 3261 §7.3.1) and several Vias in one line and across lines. */
export const folded = sip([
  'MESSAGE sip:bob@biloxi.example.com SIP/2.0',
  'Via: SIP/2.0/UDP p3.example.com;branch=z9hG4bKp3, SIP/2.0/TCP p2.example.com;branch=z9hG4bKp2,',
  '  SIP/2.0/UDP',
  '\tp1.example.com:5070;branch=z9hG4bKp1',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKua',
  'Max-Forwards: 67',
  'To: <sip:bob@biloxi.example.com>',
  'From: <sip:alice@atlanta.example.com>;tag=m1',
  'Call-ID: folded-1',
  'CSeq: 2 MESSAGE',
  'Subject: a subject',
  '   that goes on',
  '  over three lines',
  'Content-Length: 0',
]);

export const allFixtures: Record<string, Buffer> = {
  invite,
  ok200,
  bye,
  register,
  options,
  notify,
  compact,
  folded,
};

/** What a round trip must keep: everything, with Content-Length written as the serializer writes it. */
export function semantic<T extends { headers: { name: string; value: string }[]; body: Buffer }>(m: T): T {
  const seen = { length: false };
  const headers = m.headers.flatMap((h) => {
    if (!/^(content-length|l)$/i.test(h.name)) return [h];
    if (seen.length) return [];
    seen.length = true;
    return [{ name: h.name, value: String(m.body.length) }];
  });
  if (!seen.length) headers.push({ name: 'Content-Length', value: String(m.body.length) });
  return { ...m, headers };
}
