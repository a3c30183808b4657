import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { buildResponse } from './build-response.ts';
import { parseNameAddr } from './name-addr.ts';
import { parseDatagram } from './parse-datagram.ts';
import { serializeMessage } from './serialize-message.ts';
import { getHeader, getHeaderValues } from './sip-headers.ts';
import type { SipMessage, SipRequest, SipResponse } from './sip-message.ts';
import type { SipDialogNote } from './sip-dialog-note.ts';
import type { SipPeer, SipSelf } from './sip-peer.ts';
import { SipProxyCore } from './sip-proxy-core.ts';
import { parseVia } from './via.ts';

// Addresses from RFC 5737. The front end fronts UP; CALLER calls through it.
const SELF = { host: '192.0.2.10', port: 5060, transport: 'udp' as const };
const UP = { host: '192.0.2.20', port: 5080 };
const CALLER = { host: '192.0.2.101', port: 5062 };
const RR = '<sip:192.0.2.10:5060;transport=udp;lr>';

interface Sent {
  to: SipPeer;
  msg: SipMessage;
}

/** A front end on a fake network: what it sends is parsed back and kept; the clock is ours. */
function setup(
  options: {
    redirect?: () => { host: string } | undefined;
    maxIdleMs?: number;
    self?: SipSelf;
    onNote?: (note: SipDialogNote) => void;
  } = {},
) {
  const sent: Sent[] = [];
  const counts = { opened: 0, closed: 0, forced: 0, upstreamFailed: 0 };
  const clock = { now: 1_000_000 };
  const core = new SipProxyCore({
    self: options.self ?? SELF,
    upstream: UP,
    sender: { send: (to, data) => void sent.push({ to, msg: parseDatagram(data) }) },
    sink: {
      opened: () => counts.opened++,
      closed: (forced) => {
        counts.closed++;
        if (forced) counts.forced++;
      },
      upstreamFailed: () => counts.upstreamFailed++,
    },
    retryAfter: 30,
    redirect: options.redirect,
    maxIdleMs: options.maxIdleMs ?? 3_600_000,
    endWaitMs: 50,
    now: () => clock.now,
    onError: (err) => assert.fail(err as Error),
    onNote: options.onNote,
  });
  /** Everything sent since the last call. */
  const take = (): Sent[] => sent.splice(0);
  const only = (): Sent => {
    const s = take();
    assert.equal(s.length, 1, `expected one message, got ${s.map((x) => startLine(x.msg)).join(' | ')}`);
    return s[0]!;
  };
  return { core, counts, clock, take, only };
}

function startLine(m: SipMessage): string {
  return m.kind === 'request' ? `${m.method} ${m.uri}` : `${m.status} ${m.reason}`;
}

function parse(text: string[], body = ''): SipMessage {
  return parseDatagram(
    Buffer.from([...text, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n')),
  );
}

let seq = 0;
/** A call as the caller sees it. */
function call(n = ++seq) {
  const tag = `caller${n}`;
  const callId = `call-${n}@192.0.2.101`;
  const via = (branch: string) => `Via: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bK${branch};rport`;
  const common = [
    `From: "Alice" <sip:alice@192.0.2.101>;tag=${tag}`,
    `Call-ID: ${callId}`,
    'Max-Forwards: 70',
  ];
  return {
    tag,
    callId,
    invite: (method = 'INVITE', extra: string[] = []) =>
      parse([
        `${method} sip:conf@192.0.2.10:5060 SIP/2.0`,
        via(`inv${n}`),
        ...common,
        'To: <sip:conf@192.0.2.10:5060>',
        `CSeq: 1 ${method}`,
        'Contact: <sip:alice@192.0.2.101:5062>',
        ...extra,
      ]) as SipRequest,
    ack: (toTag: string, branch = `ack${n}`, uri = 'sip:bob@192.0.2.20:5080', route = [RR], cseq = 1) =>
      parse([
        `ACK ${uri} SIP/2.0`,
        via(branch),
        ...route.map((r) => `Route: ${r}`),
        ...common,
        `To: <sip:conf@192.0.2.10:5060>;tag=${toTag}`,
        `CSeq: ${cseq} ACK`,
      ]) as SipRequest,
    inDialog: (method: string, toTag: string, cseq: number, extra: string[] = []) =>
      parse([
        `${method} sip:bob@192.0.2.20:5080 SIP/2.0`,
        via(`${method.toLowerCase()}${n}-${cseq}`),
        `Route: ${RR}`,
        ...common,
        `To: <sip:conf@192.0.2.10:5060>;tag=${toTag}`,
        `CSeq: ${cseq} ${method}`,
        ...extra,
      ]) as SipRequest,
    cancel: () =>
      parse([
        'CANCEL sip:conf@192.0.2.10:5060 SIP/2.0',
        via(`inv${n}`),
        ...common,
        'To: <sip:conf@192.0.2.10:5060>',
        'CSeq: 1 CANCEL',
      ]) as SipRequest,
  };
}

/** The callee (UP) answering a request the front end forwarded: Record-Route copied for dialog-creating answers. */
function answer(
  req: SipMessage,
  status: number,
  opts: { toTag?: string; extra?: string[]; contact?: string } = {},
) {
  assert.equal(req.kind, 'request');
  const rr =
    status > 100 && status < 300
      ? getHeaderValues(req, 'Record-Route').map((value) => ({ name: 'Record-Route', value }))
      : [];
  const extra = (opts.extra ?? []).map((l) => {
    const i = l.indexOf(':');
    return { name: l.slice(0, i), value: l.slice(i + 1).trim() };
  });
  const res = buildResponse(req, status, {
    toTag: opts.toTag,
    contact: status < 300 && status > 100 ? (opts.contact ?? '<sip:bob@192.0.2.20:5080>') : undefined,
    headers: [...rr, ...extra],
  });
  return parseDatagram(serializeMessage(res)) as SipResponse;
}

/** Runs a call up to the established dialog; returns the forwarded INVITE and the callee's tag. */
function establish(h: ReturnType<typeof setup>, c = call()) {
  h.core.receive(c.invite(), CALLER);
  const fwd = h.only().msg as SipRequest;
  h.core.receive(answer(fwd, 200, { toTag: `callee-${c.tag}` }), UP);
  h.only();
  h.core.receive(c.ack(`callee-${c.tag}`), CALLER);
  h.only();
  return { c, fwd, toTag: `callee-${c.tag}` };
}

describe('SipProxyCore', () => {
  let h: ReturnType<typeof setup>;
  beforeEach(() => {
    h = setup();
  });
  afterEach(() => h.core.close());

  it('forwards an INVITE upstream with its own Via (branch, rport), Record-Route, Max-Forwards-1 and received/rport', () => {
    const c = call();
    h.core.receive(c.invite(), CALLER);
    const { to, msg } = h.only();
    assert.deepEqual({ host: to.host, port: to.port }, UP);
    const vias = getHeaderValues(msg, 'Via').map(parseVia);
    assert.equal(vias.length, 2);
    assert.equal(vias[0]!.host, SELF.host);
    assert.equal(vias[0]!.port, SELF.port);
    assert.match(vias[0]!.params.get('branch')!, /^z9hG4bK/);
    assert.equal(vias[0]!.params.get('rport'), null);
    assert.equal(vias[1]!.params.get('received'), CALLER.host);
    assert.equal(vias[1]!.params.get('rport'), String(CALLER.port));
    assert.equal(getHeader(msg, 'Record-Route'), RR);
    assert.equal(getHeader(msg, 'Max-Forwards'), '69');
    assert.equal(h.counts.opened, 1, 'the call holds a session from the moment it is forwarded');
  });

  it('is no open relay: a new request from a client goes upstream whatever Route it carries', () => {
    const inv = call().invite('INVITE', ['Route: <sip:198.51.100.7:5060;lr>']);
    h.core.receive(inv, CALLER);
    const { to, msg } = h.only();
    assert.deepEqual({ host: to.host, port: to.port }, UP);
    assert.equal(getHeader(msg, 'Route'), '<sip:198.51.100.7:5060;lr>', 'kept for the upstream to judge');
  });

  it('routes responses back by Via (received/rport) without its own Via', () => {
    const c = call();
    h.core.receive(c.invite(), CALLER);
    const fwd = h.only().msg;
    h.core.receive(answer(fwd, 180, { toTag: 't1' }), UP);
    const { to, msg } = h.only();
    assert.deepEqual({ host: to.host, port: to.port }, CALLER);
    assert.equal(getHeaderValues(msg, 'Via').length, 1);
    assert.equal((msg as SipResponse).status, 180);
  });

  it('a call is one session: opened at the INVITE, kept by the dialog, closed once by the BYE answer', () => {
    const { c, toTag } = establish(h);
    assert.deepEqual(h.counts, { opened: 1, closed: 0, forced: 0, upstreamFailed: 0 });
    assert.equal(h.core.stats().dialogs, 1);
    h.core.receive(c.inDialog('BYE', toTag, 2), CALLER);
    const bye = h.only();
    assert.deepEqual({ host: bye.to.host, port: bye.to.port }, UP, 'in-dialog requests go to the callee');
    assert.equal(getHeader(bye.msg, 'Route'), undefined, 'its own Route is removed');
    assert.equal(h.counts.closed, 0, 'the dialog ends with the answer to the BYE');
    h.core.receive(answer(bye.msg, 200), UP);
    h.only();
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
    assert.equal(h.core.sessions, 0);
  });

  it('a BYE from the callee goes to the caller along the route set', () => {
    const { c, toTag } = establish(h);
    const bye = parse([
      'BYE sip:alice@192.0.2.101:5062 SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.20:5080;branch=z9hG4bKcalleebye;rport',
      `Route: ${RR}`,
      `From: <sip:conf@192.0.2.10:5060>;tag=${toTag}`,
      `To: "Alice" <sip:alice@192.0.2.101>;tag=${c.tag}`,
      `Call-ID: ${c.callId}`,
      'CSeq: 1 BYE',
      'Max-Forwards: 70',
    ]);
    h.core.receive(bye, UP);
    const fwd = h.only();
    assert.deepEqual({ host: fwd.to.host, port: fwd.to.port }, CALLER);
    h.core.receive(answer(fwd.msg, 200), CALLER);
    const back = h.only();
    assert.deepEqual({ host: back.to.host, port: back.to.port }, UP);
    assert.equal(h.counts.closed, 1);
  });

  it('absorbs retransmissions: relayed while unanswered, answered from memory after', () => {
    const c = call();
    h.core.receive(c.invite(), CALLER);
    const first = h.only().msg;
    h.core.receive(c.invite(), CALLER);
    const again = h.only();
    assert.deepEqual(
      { host: again.to.host, port: again.to.port },
      UP,
      'relayed: the client timer covers the next hop',
    );
    assert.equal(getHeader(again.msg, 'Via'), getHeader(first, 'Via'), 'with the same branch');
    h.core.receive(answer(first, 100), UP);
    h.only();
    h.core.receive(c.invite(), CALLER);
    const resent = h.only();
    assert.equal(
      (resent.msg as SipResponse).status,
      100,
      'the last response is sent again, nothing forwarded',
    );
    assert.deepEqual({ host: resent.to.host, port: resent.to.port }, CALLER);
    assert.equal(h.counts.opened, 1);
    assert.equal(h.core.stats().retransmissions, 2);
  });

  it('a non-2xx answer ends the call; the ACK for it follows the INVITE with the same branch', () => {
    const c = call();
    h.core.receive(c.invite(), CALLER);
    const fwd = h.only().msg;
    h.core.receive(answer(fwd, 180, { toTag: 'early' }), UP);
    h.only();
    assert.equal(h.core.stats().dialogs, 1, 'an early dialog');
    h.core.receive(answer(fwd, 486, { toTag: 'early' }), UP);
    h.only();
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
    h.core.receive(c.ack('early', `inv${seq}`, 'sip:conf@192.0.2.10:5060', []), CALLER);
    const ack = h.only();
    assert.deepEqual({ host: ack.to.host, port: ack.to.port }, UP);
    assert.equal(
      parseVia(getHeader(ack.msg, 'Via')!).params.get('branch'),
      parseVia(getHeader(fwd, 'Via')!).params.get('branch'),
    );
  });

  it('CANCEL goes to the callee with the INVITE branch; the 487 ends the session', () => {
    const c = call();
    h.core.receive(c.invite(), CALLER);
    const fwd = h.only().msg;
    h.core.receive(answer(fwd, 100), UP);
    h.only();
    h.core.receive(c.cancel(), CALLER);
    const cancel = h.only().msg;
    assert.equal((cancel as SipRequest).method, 'CANCEL');
    assert.equal(
      getHeaderValues(cancel, 'Via')[0],
      getHeaderValues(fwd, 'Via')[0],
      'the INVITE branch (§9.1)',
    );
    h.core.receive(answer(cancel, 200), UP);
    assert.equal((h.only().msg as SipResponse).status, 200);
    h.core.receive(answer(fwd, 487, { toTag: 'x' }), UP);
    h.only();
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
    h.core.receive(call().cancel(), CALLER);
    assert.equal((h.only().msg as SipResponse).status, 481, 'a CANCEL for nothing known');
  });

  it('while refusing: new calls, subscriptions and registrations get 503 + Retry-After; the ACK stops here', () => {
    h.core.refusing = true;
    for (const method of ['INVITE', 'SUBSCRIBE', 'REGISTER']) {
      const c = call();
      h.core.receive(c.invite(method, method === 'SUBSCRIBE' ? ['Event: presence'] : []), CALLER);
      const r = h.only();
      assert.equal((r.msg as SipResponse).status, 503, method);
      assert.equal(getHeader(r.msg, 'Retry-After'), '30');
      assert.deepEqual({ host: r.to.host, port: r.to.port }, CALLER);
      if (method === 'INVITE') {
        h.core.receive(c.invite(), CALLER);
        assert.equal((h.only().msg as SipResponse).status, 503, 'a retransmission gets the same answer');
        const tag = parseNameAddr(getHeader(r.msg, 'To')!).params.get('tag')!;
        h.core.receive(c.ack(tag, `inv${seq}`, 'sip:conf@192.0.2.10:5060', []), CALLER);
        assert.equal(h.take().length, 0, 'the ACK for our 503 is absorbed');
      }
    }
    const message = call().invite('MESSAGE');
    h.core.receive(message, CALLER);
    assert.deepEqual(
      { host: h.only().to.host },
      { host: UP.host },
      'requests that start no session still flow',
    );
    assert.equal(h.counts.opened, 0);
    assert.equal(h.core.stats().refused, 3);
  });

  it('while refusing, calls already up go on: in-dialog requests and their answers flow', () => {
    const { c, toTag } = establish(h);
    h.core.refusing = true;
    h.core.receive(c.inDialog('INVITE', toTag, 2), CALLER);
    const reinvite = h.only();
    assert.equal((reinvite.msg as SipRequest).method, 'INVITE', 'a re-INVITE is not a new session');
    h.core.receive(answer(reinvite.msg, 200, { toTag }), UP);
    h.only();
    h.core.receive(c.inDialog('BYE', toTag, 3), CALLER);
    h.core.receive(answer(h.only().msg, 200), UP);
    h.only();
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
  });

  it('answers OPTIONS to itself (no user part): 200 while accepting, 503 while refusing; others are forwarded', () => {
    const probe = () =>
      parse([
        'OPTIONS sip:192.0.2.10:5060 SIP/2.0',
        `Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKprobe${++seq}`,
        'From: <sip:lb@192.0.2.50>;tag=lb',
        'To: <sip:192.0.2.10:5060>',
        `Call-ID: probe${seq}`,
        'CSeq: 1 OPTIONS',
        'Max-Forwards: 0',
      ]);
    h.core.receive(probe(), { host: '192.0.2.50', port: 5060 });
    const ok = h.only().msg as SipResponse;
    assert.equal(ok.status, 200);
    assert.ok(getHeaderValues(ok, 'Allow').includes('SUBSCRIBE'));
    h.core.refusing = true;
    h.core.receive(probe(), { host: '192.0.2.50', port: 5060 });
    assert.equal((h.only().msg as SipResponse).status, 503);
    h.core.receive(call().invite('OPTIONS'), CALLER);
    assert.equal(h.only().msg.kind, 'request', 'an OPTIONS to a user is forwarded');
  });

  it('reroute redirect: 302 with the accepting member in Contact (keeps the user and transport)', () => {
    h.core.close();
    h = setup({ redirect: () => ({ host: '192.0.2.11' }) });
    h.core.refusing = true;
    h.core.receive(call().invite(), CALLER);
    const r = h.only().msg as SipResponse;
    assert.equal(r.status, 302);
    assert.equal(getHeader(r, 'Contact'), '<sip:conf@192.0.2.11:5060;transport=udp>');
  });

  it('Max-Forwards 0 gets 483; malformed requests 400; responses not for it are dropped', () => {
    h.core.receive(mf0(), CALLER);
    assert.equal((h.only().msg as SipResponse).status, 483);
    const bad = parseDatagram(
      Buffer.from(
        'INVITE sip:x@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bKbad\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n',
      ),
    );
    h.core.receive(bad, CALLER);
    assert.equal((h.only().msg as SipResponse).status, 400, 'CSeq method differs');
    const stray = parse([
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKnotours',
      'From: <sip:a@b>;tag=1',
      'To: <sip:c@d>;tag=2',
      'Call-ID: stray',
      'CSeq: 1 INVITE',
    ]);
    h.core.receive(stray, UP);
    assert.equal(h.take().length, 0);
    assert.equal(h.counts.opened, 0);

    function mf0() {
      const c = call();
      const inv = c.invite();
      for (const hdr of inv.headers) if (hdr.name === 'Max-Forwards') hdr.value = '0';
      return inv;
    }
  });

  it('no answer at all within 64*T1: the session ends and counts as an upstream failure', () => {
    h.core.receive(call().invite(), CALLER);
    h.take();
    h.clock.now += 31_000;
    h.core.sweep(h.clock.now);
    assert.equal(h.counts.closed, 0);
    h.clock.now += 4_000;
    h.core.sweep(h.clock.now);
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 1 });
  });

  it('a 2xx never ACKed: after 64*T1 the call ends (not forced) with a BYE to each party (RFC 3261 §13.3.1.4)', () => {
    const c = call();
    h.core.receive(c.invite(), CALLER);
    const fwd = h.only().msg;
    h.core.receive(answer(fwd, 200, { toTag: 'noack' }), UP);
    h.only();
    h.clock.now += 31_000;
    h.core.sweep(h.clock.now);
    assert.equal(h.take().length, 0);
    assert.equal(h.core.sessions, 1);
    h.clock.now += 2_000;
    h.core.sweep(h.clock.now);
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
    const byes = h.take().map((s) => ({ to: s.to, msg: s.msg as SipRequest }));
    assert.deepEqual(
      byes.map((b) => [b.msg.method, b.to.host]).sort(),
      [
        ['BYE', CALLER.host],
        ['BYE', UP.host],
      ].sort(),
    );
    const toCaller = byes.find((b) => b.to.host === CALLER.host)!;
    assert.equal(parseNameAddr(getHeader(toCaller.msg, 'From')!).params.get('tag'), 'noack', 'as the UAS');
    assert.equal(getHeader(toCaller.msg, 'Reason'), 'SIP;cause=408;text="no ACK for the 2xx"');
  });

  it('Session-Expires (RFC 4028): an unrefreshed session is forgotten after the interval and a grace', () => {
    const c = call();
    h.core.receive(c.invite('INVITE', ['Session-Expires: 90', 'Supported: timer']), CALLER);
    const fwd = h.only().msg;
    h.core.receive(answer(fwd, 200, { toTag: 'se', extra: ['Session-Expires: 90;refresher=uac'] }), UP);
    h.only();
    h.core.receive(c.ack('se'), CALLER);
    h.only();
    h.clock.now += 100_000;
    h.core.sweep(h.clock.now);
    assert.equal(h.counts.closed, 0, 'within the grace');
    h.clock.now += 30_000;
    h.core.sweep(h.clock.now);
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
  });

  it('max idle: a dialog with no request for that long is forgotten (a lost BYE cannot block a drain)', () => {
    h.core.close();
    h = setup({ maxIdleMs: 60_000 });
    const { c, toTag } = establish(h);
    h.clock.now += 50_000;
    h.core.receive(c.inDialog('INFO', toTag, 2), CALLER);
    h.core.receive(answer(h.only().msg, 200), UP);
    h.only();
    h.clock.now += 50_000;
    h.core.sweep(h.clock.now);
    assert.equal(h.counts.closed, 0, 'the INFO reset the idle time');
    h.clock.now += 12_000;
    h.core.sweep(h.clock.now);
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
  });

  it('481 or 408 to a request inside a dialog ends it (RFC 3261 §12.2.1.2)', () => {
    const { c, toTag } = establish(h);
    h.core.receive(c.inDialog('INFO', toTag, 2), CALLER);
    h.core.receive(answer(h.only().msg, 481), UP);
    h.only();
    assert.equal(h.counts.closed, 1);
  });

  it('a subscription is a session: SUBSCRIBE 200 opens it, NOTIFY terminated ends it once answered', () => {
    const c = call();
    h.core.receive(c.invite('SUBSCRIBE', ['Event: presence', 'Expires: 600']), CALLER);
    const fwd = h.only().msg;
    h.core.receive(answer(fwd, 200, { toTag: 'notifier', extra: ['Expires: 600'] }), UP);
    h.only();
    assert.equal(h.core.sessions, 1);
    const notify = parse([
      'NOTIFY sip:alice@192.0.2.101:5062 SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.20:5080;branch=z9hG4bKnotify1',
      `Route: ${RR}`,
      'From: <sip:conf@192.0.2.10:5060>;tag=notifier',
      `To: "Alice" <sip:alice@192.0.2.101>;tag=${c.tag}`,
      `Call-ID: ${c.callId}`,
      'CSeq: 1 NOTIFY',
      'Event: presence',
      'Subscription-State: terminated;reason=timeout',
      'Max-Forwards: 70',
    ]);
    h.core.receive(notify, UP);
    const fwdNotify = h.only();
    assert.deepEqual({ host: fwdNotify.to.host, port: fwdNotify.to.port }, CALLER);
    assert.equal(h.counts.closed, 0);
    h.core.receive(answer(fwdNotify.msg, 200), CALLER);
    h.only();
    assert.deepEqual(h.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
  });

  it('a NOTIFY before the 2xx creates the subscription (RFC 6665 §4.1.2.4); the late 2xx keeps it one session', () => {
    const c = call();
    h.core.receive(c.invite('SUBSCRIBE', ['Event: dialog']), CALLER);
    const fwd = h.only().msg;
    const notify = parse([
      'NOTIFY sip:alice@192.0.2.101:5062 SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.20:5080;branch=z9hG4bKnotify2',
      `Route: ${RR}`,
      'From: <sip:conf@192.0.2.10:5060>;tag=early-notifier',
      `To: "Alice" <sip:alice@192.0.2.101>;tag=${c.tag}`,
      `Call-ID: ${c.callId}`,
      'CSeq: 1 NOTIFY',
      'Event: dialog',
      'Subscription-State: active;expires=300',
      'Max-Forwards: 70',
    ]);
    h.core.receive(notify, UP);
    h.only();
    h.core.receive(answer(fwd, 202, { toTag: 'early-notifier', extra: ['Expires: 300'] }), UP);
    h.only();
    assert.equal(h.core.stats().dialogs, 1);
    assert.deepEqual(h.counts, { opened: 1, closed: 0, forced: 0, upstreamFailed: 0 });
    h.clock.now += 340_000;
    h.core.sweep(h.clock.now);
    assert.equal(h.counts.closed, 1, 'an unrefreshed subscription expires');
  });

  it('endSessions: a BYE with Reason 503 maintenance to both parties, a CANCEL for a ringing call; all forced', async () => {
    const { c, toTag } = establish(h);
    const ringing = call();
    h.core.receive(ringing.invite(), CALLER);
    const ringingFwd = h.only().msg;
    h.core.receive(answer(ringingFwd, 180, { toTag: 'ring' }), UP);
    h.only();
    assert.equal(h.core.sessions, 2);

    const ended = await h.core.endSessions();
    assert.equal(ended, 2);
    assert.deepEqual(h.counts, { opened: 2, closed: 2, forced: 2, upstreamFailed: 0 });
    const out = h.take().map((s) => ({ to: s.to, msg: s.msg as SipRequest }));
    const byes = out.filter((s) => s.msg.method === 'BYE');
    assert.equal(byes.length, 2);
    for (const b of byes) assert.equal(getHeader(b.msg, 'Reason'), 'SIP;cause=503;text="maintenance"');
    const toCaller = byes.find((b) => b.to.host === CALLER.host)!;
    assert.equal(toCaller.msg.uri, 'sip:alice@192.0.2.101:5062', "the caller's Contact");
    assert.equal(
      parseNameAddr(getHeader(toCaller.msg, 'From')!).params.get('tag'),
      toTag,
      'in the callee’s name',
    );
    const toCallee = byes.find((b) => b.to.host === UP.host)!;
    assert.equal(toCallee.msg.uri, 'sip:bob@192.0.2.20:5080');
    assert.equal(getHeader(toCallee.msg, 'CSeq'), '2 BYE', "the caller's next CSeq");
    assert.equal(parseNameAddr(getHeader(toCallee.msg, 'From')!).params.get('tag'), c.tag);
    const cancel = out.find((s) => s.msg.method === 'CANCEL')!;
    assert.equal(getHeader(cancel.msg, 'Via'), getHeaderValues(ringingFwd, 'Via')[0], 'the INVITE branch');
    // Answers to Ebb's own requests stop there.
    h.core.receive(answer(toCallee.msg, 200), UP);
    h.core.receive(answer(ringingFwd, 487, { toTag: 'ring' }), UP);
    assert.equal(h.take().length, 1, 'only the 487 goes on to the caller');
    assert.deepEqual(h.counts, { opened: 2, closed: 2, forced: 2, upstreamFailed: 0 });
  });

  it('a call answered after endSessions cancelled it is ended at once, counted once as forced', async () => {
    const c = call();
    h.core.receive(c.invite(), CALLER);
    const fwd = h.only().msg;
    await h.core.endSessions();
    h.take();
    h.core.receive(answer(fwd, 200, { toTag: 'late' }), UP);
    const out = h.take();
    assert.equal((out[0]!.msg as SipResponse).status, 200, 'the caller gets its answer');
    assert.equal(out.filter((s) => s.msg.kind === 'request' && s.msg.method === 'BYE').length, 2);
    assert.deepEqual(h.counts, { opened: 2, closed: 2, forced: 2, upstreamFailed: 0 });
  });

  it('exact counts under interleaved load with duplicates: opened once and closed once per call', () => {
    const calls = Array.from({ length: 300 }, () => call());
    const steps: Array<() => void> = [];
    const fwds = new Map<string, SipMessage>();
    for (const c of calls) {
      steps.push(() => {
        h.core.receive(c.invite(), CALLER);
        h.core.receive(c.invite(), CALLER); // retransmission
        for (const s of h.take()) if (s.msg.kind === 'request') fwds.set(c.callId, s.msg);
      });
    }
    for (let i = steps.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [steps[i], steps[j]] = [steps[j]!, steps[i]!];
    }
    for (const s of steps) s();
    for (const [i, c] of calls.entries()) {
      const fwd = fwds.get(c.callId)!;
      const tag = `t${i}`;
      h.core.receive(answer(fwd, 200, { toTag: tag }), UP);
      if (i % 3 === 0) h.core.receive(answer(fwd, 200, { toTag: tag }), UP); // 2xx retransmission
      h.core.receive(c.ack(tag), CALLER);
      h.core.receive(c.inDialog('BYE', tag, 2), CALLER);
      const bye = h.take().find((s) => s.msg.kind === 'request' && s.msg.method === 'BYE')!;
      h.core.receive(answer(bye.msg, 200), UP);
      if (i % 5 === 0) h.core.receive(answer(bye.msg, 200), UP);
      h.take();
    }
    assert.deepEqual(h.counts, { opened: 300, closed: 300, forced: 0, upstreamFailed: 0 });
    assert.equal(h.core.sessions, 0);
  });
});

/**
 * Two front ends sharing port 5060 (SPEC §13: threads, or a process handing over), each with a port of
 * its own (5061, 5062) in its Via and Record-Route. The kernel may give a caller's ACK or BYE to the one
 * that did not forward the INVITE: that one routes it and notes it; the owner counts it.
 */
describe('SipProxyCore beside another on a shared port (notes)', () => {
  const A_RR = '<sip:192.0.2.10:5061;transport=udp;lr>';
  let a: ReturnType<typeof setup>;
  let b: ReturnType<typeof setup>;
  let notes: SipDialogNote[];
  beforeEach(() => {
    notes = [];
    a = setup({
      self: { ...SELF, port: 5061, sharedPort: 5060 },
      onNote: (n) => (notes.push(n), b.core.applyNote(n)),
    });
    b = setup({
      self: { ...SELF, port: 5062, sharedPort: 5060 },
      onNote: (n) => (notes.push(n), a.core.applyNote(n)),
    });
  });
  afterEach(() => {
    a.core.close();
    b.core.close();
  });

  /** INVITE and 200 through a; returns the call and the callee's tag. */
  function answered() {
    const c = call();
    a.core.receive(c.invite(), CALLER);
    const fwd = a.only().msg as SipRequest;
    assert.equal(parseVia(getHeaderValues(fwd, 'Via')[0]!).port, 5061, 'its own port in the Via');
    assert.equal(getHeader(fwd, 'Record-Route'), A_RR, 'and in the Record-Route');
    a.core.receive(answer(fwd, 200, { toTag: `callee-${c.tag}` }), UP);
    a.only();
    return { c, toTag: `callee-${c.tag}` };
  }

  it('an ACK along the route set goes on to the owner, un-noted; the owner then sends no BYE for a missing ACK (RFC 3261 §13.3.1.4)', () => {
    const { c, toTag } = answered();
    b.core.receive(c.ack(toTag, 'ack-b', 'sip:bob@192.0.2.20:5080', [A_RR]), CALLER);
    const { to, msg } = b.only();
    assert.deepEqual(
      { host: to.host, port: to.port },
      { host: SELF.host, port: 5061 },
      'along the route set',
    );
    assert.deepEqual(notes, [], 'the owner gets the ACK itself: a note would count it twice, or early');
    a.core.receive(msg, { host: SELF.host, port: 5062, transport: 'udp' });
    assert.equal(a.only().to.host, '192.0.2.20', 'the owner sends it on to the callee');
    a.clock.now += 40_000;
    a.core.sweep(a.clock.now);
    assert.deepEqual(a.take(), [], 'no BYE');
    assert.equal(a.core.sessions, 1);
  });

  it('an ACK to the shared port without a route is noted: the owner sends no BYE for a missing ACK', () => {
    const { c, toTag } = answered();
    b.core.receive(withoutRoute(c.ack(toTag, 'ack-b', 'sip:bob@192.0.2.20:5080', [])), CALLER);
    b.only();
    assert.deepEqual(notes, [
      { kind: 'sip-dialog', callId: c.callId, fromTag: c.tag, toTag, cseq: 1, event: 'ack' },
    ]);
    a.clock.now += 40_000;
    a.core.sweep(a.clock.now);
    assert.deepEqual(a.take(), [], 'no BYE');
    assert.equal(a.core.sessions, 1);
  });

  it('a BYE to the shared port without a route: the other sends it upstream, the owner counts the end once', () => {
    const { c, toTag } = answered();
    a.core.receive(c.ack(toTag), CALLER);
    a.only();
    const bye = () => withoutRoute(c.inDialog('BYE', toTag, 2));
    b.core.receive(bye(), CALLER);
    const fwd = b.only();
    assert.deepEqual({ host: fwd.to.host, port: fwd.to.port }, UP);
    assert.equal(notes.at(-1)?.event, 'ended');
    assert.deepEqual(a.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
    assert.equal(b.counts.opened + b.counts.closed, 0, 'the other counts nothing');
    b.core.receive(answer(fwd.msg, 200), UP);
    assert.deepEqual({ host: b.only().to.host }, { host: CALLER.host }, 'the answer goes to the caller');
    b.core.receive(bye(), CALLER); // a retransmission is answered from memory, not noted again
    b.take();
    assert.equal(notes.filter((n) => n.event === 'ended').length, 1);
  });

  it("481 to a re-INVITE the other routed ends the owner's dialog (RFC 3261 §12.2.1.2)", () => {
    const { c, toTag } = answered();
    a.core.receive(c.ack(toTag), CALLER);
    a.only();
    b.core.receive(c.inDialog('INFO', toTag, 2, []), CALLER);
    assert.equal(notes.at(-1)?.event, 'active');
    b.take();
    b.core.receive(withoutRoute(c.inDialog('INVITE', toTag, 3)), CALLER);
    const fwd = b.only().msg;
    assert.equal(notes.at(-1)?.event, 'active');
    b.core.receive(answer(fwd, 481), UP);
    assert.equal(notes.at(-1)?.event, 'ended');
    assert.deepEqual(a.counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
  });

  it('the shared port names it too: a Route to it is its own, a 302 names it', () => {
    const c = call();
    a.core.receive(c.invite('INVITE', ['Route: <sip:192.0.2.10:5060;lr>']), CALLER);
    assert.equal(getHeader(a.only().msg, 'Route'), undefined, 'removed as its own (RFC 3261 §16.4)');
    const r = setup({
      self: { ...SELF, port: 5061, sharedPort: 5060 },
      redirect: () => ({ host: '192.0.2.11' }),
    });
    r.core.refusing = true;
    r.core.receive(call().invite(), CALLER);
    assert.equal(getHeader(r.only().msg, 'Contact'), '<sip:conf@192.0.2.11:5060;transport=udp>');
    r.core.close();
  });
});

/** As SIPp sends in-dialog requests: to the address it was given, without the route set. */
function withoutRoute(req: SipRequest): SipRequest {
  return { ...req, headers: req.headers.filter((x) => x.name !== 'Route') };
}
