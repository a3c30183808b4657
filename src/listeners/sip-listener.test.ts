import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import {
  buildResponse,
  getHeader,
  getHeaderValues,
  serializeMessage,
  parseDatagram,
  SipStreamParser,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from '../sip/index.ts';
import { countsOf } from './listener-test-support.ts';
import { SipListener } from './sip-listener.ts';
import { RawUa, until } from './sip-raw-ua.ts';

const host = '127.0.0.1';

describe('SipListener on real sockets, with the built-in callee', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function listener(
    transport: 'udp' | 'tcp',
    upstream: SipListener['upstream'] | 'builtin' = 'builtin',
    extra: { closeSpreadMs?: number; drainFlows?: boolean } = {},
  ) {
    const l = new SipListener({
      host,
      port: 0,
      transport,
      upstream: upstream ?? 'builtin',
      retryAfter: 9,
      endWaitMs: 500,
      ...extra,
    });
    cleanups.push(async () => void (await l.destroy()));
    return { l, counts: countsOf(l) };
  }

  async function ua(transport: 'udp' | 'tcp', l: SipListener) {
    const u = await RawUa.open(transport, { host, port: l.port });
    cleanups.push(() => u.close());
    return u;
  }

  for (const transport of ['udp', 'tcp'] as const) {
    it(`${transport}: open(true) binds and refuses; accept() takes calls; refuse() keeps the socket and the calls`, async () => {
      const { l, counts } = await listener(transport);
      await l.open(true);
      assert.match(l.description, new RegExp(`^sip/${transport} 127\\.0\\.0\\.1:0 → builtin:sip-uas$`));
      const u = await ua(transport, l);
      u.send(u.request('OPTIONS', { user: null }));
      assert.equal(getHeader(await u.response(503), 'Retry-After'), '9');
      u.send(u.request('INVITE'));
      await u.response(503, 'INVITE');
      assert.equal(counts.opened, 0);

      await l.accept();
      u.send(u.request('OPTIONS', { user: null }));
      await u.response(200, 'OPTIONS');
      const dialog = await u.call();
      await until(() => l.stats().sessions === 1, 'one session');

      await l.refuse();
      const other = await ua(transport, l);
      other.send(other.request('INVITE'));
      await other.response(503, 'INVITE');
      u.send(u.request('BYE', { uri: dialog.contact, toTag: dialog.toTag, route: dialog.route }));
      await u.response(200, 'BYE');
      await until(() => counts.closed === 1, 'the BYE ends the session');
      assert.deepEqual(counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
      assert.equal(l.stats().sessions, 0);
    });

    it(`${transport}: destroy() ends the calls left with a maintenance BYE, counted as forced`, async () => {
      const { l, counts } = await listener(transport);
      await l.open(false);
      const u = await ua(transport, l);
      await u.call();
      await until(() => l.stats().sessions === 1, 'one session');
      const closing = l.destroy();
      const bye = (await u.next((m) => m.kind === 'request' && m.method === 'BYE', 'BYE')) as SipRequest;
      assert.equal(getHeader(bye, 'Reason'), 'SIP;cause=503;text="maintenance"');
      const via = getHeaderValues(bye, 'Via')[0]!;
      u.send(
        [
          'SIP/2.0 200 OK',
          `Via: ${via}`,
          `From: ${getHeader(bye, 'From')}`,
          `To: ${getHeader(bye, 'To')}`,
          `Call-ID: ${getHeader(bye, 'Call-ID')}`,
          `CSeq: ${getHeader(bye, 'CSeq')}`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
      assert.equal(await closing, 1);
      assert.deepEqual(counts, { opened: 1, closed: 1, forced: 1, upstreamFailed: 0 });
      assert.equal(l.state, 'closed');
    });

    it(`${transport}: close() answers 503 to new calls, lets the call end with its own BYE, then closes`, async () => {
      const { l, counts } = await listener(transport);
      await l.open(false);
      const u = await ua(transport, l);
      const dialog = await u.call();
      await until(() => l.stats().sessions === 1, 'one session');
      let done = false;
      const closing = l.close().then(() => (done = true));
      assert.equal(l.close(), l.close(), 'the same promise');
      await until(() => l.state === 'closing', 'closing');
      const other = await ua(transport, l);
      other.send(other.request('INVITE'));
      await other.response(503, 'INVITE');
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(done, false, 'close waits for the call');
      u.send(u.request('BYE', { uri: dialog.contact, toTag: dialog.toTag, route: dialog.route }));
      await u.response(200, 'BYE');
      await closing;
      assert.equal(l.state, 'closed');
      assert.deepEqual(counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
    });

    it(`${transport}: endSessions() ends the calls but the listener goes on refusing with 503`, async () => {
      const { l, counts } = await listener(transport);
      await l.open(false);
      const u = await ua(transport, l);
      await u.call();
      await l.refuse();
      assert.equal(l.state, 'refusing');
      const ending = l.endSessions();
      const bye = (await u.next((m) => m.kind === 'request' && m.method === 'BYE', 'BYE')) as SipRequest;
      assert.equal(getHeader(bye, 'Reason'), 'SIP;cause=503;text="maintenance"');
      assert.equal(await ending, 1);
      assert.equal(counts.forced, 1);
      assert.equal(l.state, 'refusing', 'the state does not change');
      u.send(u.request('INVITE'));
      await u.response(503, 'INVITE');
      assert.equal(l.stats().refused, 1);
    });
  }

  it('a port in use: open() fails with EBB_LISTEN_FAILED and leaves nothing behind', async () => {
    const first = await listener('udp');
    await first.l.open(false);
    const second = new SipListener({ host, port: first.l.port, transport: 'udp', upstream: 'builtin' });
    await assert.rejects(
      second.open(false),
      (err: Error & { code?: string; errno?: string }) =>
        err.code === 'EBB_LISTEN_FAILED' && err.errno === 'EADDRINUSE',
    );
    assert.equal(second.stats().sessions, 0);
    assert.equal(second.state, 'closed');
  });

  it('tcp: an upstream that refuses connections: the caller gets 503 and the failure is counted', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, host, () => resolve()));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { l, counts } = await listener('tcp', { host, port: deadPort });
    await l.open(false);
    const u = await ua('tcp', l);
    u.send(u.request('INVITE'));
    await u.response(503, 'INVITE');
    assert.deepEqual(counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 1 });
  });

  /** An upstream on UDP and (unless `udpOnly`) TCP on one port, keeping what arrives and how. */
  async function fakeUpstream(udpOnly = false) {
    const got: Array<{ over: 'udp' | 'tcp'; msg: SipMessage; reply: (m: SipResponse) => void }> = [];
    const tcp = createServer((sock) => {
      const parser = new SipStreamParser({
        onMessage: (msg) => got.push({ over: 'tcp', msg, reply: (r) => sock.write(serializeMessage(r)) }),
        onError: () => sock.destroy(),
      });
      sock.on('data', (d: Buffer) => parser.push(d));
      sock.on('error', () => {});
    });
    await new Promise<void>((resolve) => tcp.listen(0, host, () => resolve()));
    const port = (tcp.address() as { port: number }).port;
    if (udpOnly) await new Promise<void>((resolve) => tcp.close(() => resolve()));
    const udp = createSocket('udp4');
    udp.on('message', (buf, rinfo) =>
      got.push({
        over: 'udp',
        msg: parseDatagram(buf),
        reply: (r) => udp.send(serializeMessage(r), rinfo.port, rinfo.address),
      }),
    );
    await new Promise<void>((resolve) => udp.bind(port, host, () => resolve()));
    cleanups.push(() => {
      udp.close();
      if (!udpOnly) tcp.close();
    });
    return { port, got };
  }

  /** An INVITE whose body makes it `size` bytes in all. */
  function bigInvite(u: RawUa, size: number): string {
    const head = u.request('INVITE').replace('Content-Length: 0\r\n\r\n', '');
    const fixed = `Content-Type: application/sdp\r\nContent-Length: 00000\r\n\r\n`;
    const body = 'a'.repeat(size - Buffer.byteLength(head) - fixed.length);
    return `${head}Content-Type: application/sdp\r\nContent-Length: ${String(body.length).padStart(5, '0')}\r\n\r\n${body}`;
  }

  it('udp: a request too large for UDP goes to the upstream over TCP, its Via saying so; the answer comes back over UDP (RFC 3261 §18.1.1)', async () => {
    const up = await fakeUpstream();
    const { l } = await listener('udp', { host, port: up.port });
    await l.open(false);
    const u = await ua('udp', l);
    u.send(bigInvite(u, 3000));
    await until(() => up.got.length === 1, 'the INVITE upstream');
    const { over, msg, reply } = up.got.shift()!;
    assert.equal(over, 'tcp');
    assert.match(getHeaderValues(msg, 'Via')[0]!, /^SIP\/2\.0\/TCP 127\.0\.0\.1:/);
    const rr = getHeaderValues(msg, 'Record-Route').map((value) => ({ name: 'Record-Route', value }));
    const ok = buildResponse(msg as SipRequest, 200, {
      toTag: 'big',
      contact: `<sip:conf@${host}:${up.port}>`,
      headers: rr,
    });
    reply(ok);
    await u.response(200, 'INVITE');
    // The rest of the dialog follows the callee over its TCP connection.
    u.send(
      u.request('ACK', {
        uri: `sip:conf@${host}:${up.port}`,
        toTag: 'big',
        route: getHeaderValues(ok, 'Record-Route'),
      }),
    );
    await until(() => up.got.length === 1, 'the ACK upstream');
    assert.equal(up.got[0]!.over, 'tcp');
    assert.equal(l.stats().sessions, 1);
  });

  it('udp: with no TCP at the upstream it falls back to UDP; a request that no datagram can carry gets 513', async () => {
    const up = await fakeUpstream(true);
    const { l, counts } = await listener('udp', { host, port: up.port });
    await l.open(false);
    const u = await ua('udp', l);
    u.send(bigInvite(u, 2000));
    await until(() => up.got.length === 1, 'the INVITE upstream over UDP');
    assert.equal(up.got[0]!.over, 'udp');
    assert.match(getHeaderValues(up.got[0]!.msg, 'Via')[0]!, /^SIP\/2\.0\/UDP /);
    const v = await ua('udp', l);
    v.send(bigInvite(v, 65_450)); // fits one datagram; with Ebb's Via and Record-Route it would not
    await v.response(513, 'INVITE');
    assert.equal(up.got.length, 1, 'nothing more reached the upstream');
    assert.equal(counts.upstreamFailed, 1);
  });

  it('tcp, paused: REGISTER gets 503; idle flows close within closeSpread, a flow with a call after its BYE (SPEC §14)', async () => {
    const { l } = await listener('tcp', 'builtin', { closeSpreadMs: 400 });
    await l.open(false);
    const registered = await ua('tcp', l);
    registered.send(registered.request('REGISTER', { user: null }));
    await registered.response(200, 'REGISTER');
    const caller = await ua('tcp', l);
    const dialog = await caller.call();
    await until(() => l.stats().sessions === 1 && l.stats().flows === 2, 'a call and two flows');

    await l.refuse();
    const started = Date.now();
    registered.send(registered.request('REGISTER', { user: null }));
    assert.equal(getHeader(await registered.response(503, 'REGISTER'), 'Retry-After'), '9');
    await until(() => registered.closed, 'the idle flow closed', 2000);
    assert.ok(Date.now() - started < 1000, 'within closeSpread (and a tick)');
    // The client sees the listener's FIN before the listener sees its socket closed (the client's FIN
    // back): the flow is counted until then, so wait for the listener's own count.
    await until(() => l.stats().flows === 1, 'the listener counts the one flow left');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(caller.closed, false, 'the flow with a call stays');
    caller.send(caller.request('BYE', { uri: dialog.contact, toTag: dialog.toTag, route: dialog.route }));
    await caller.response(200, 'BYE');
    await until(() => caller.closed, 'closed after its last call', 2000);
    await until(() => l.stats().flows === 0, 'no flow left');
  });

  it('tcp, drainFlows: flows are sessions, so close() waits for them to be closed', async () => {
    const { l } = await listener('tcp', 'builtin', { closeSpreadMs: 300, drainFlows: true });
    await l.open(false);
    const u = await ua('tcp', l);
    u.send(u.request('REGISTER', { user: null }));
    await u.response(200, 'REGISTER');
    await until(() => l.stats().sessions === 1, 'the flow counts');
    assert.deepEqual(l.stats().byKind, { dialogs: 0, flows: 1 });
    await l.close();
    await until(() => u.closed, 'the client saw the close');
    assert.equal(l.stats().sessions, 0);
  });
});
