import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { getHeaderValues } from '../sip/index.ts';
import type { ListenerNote } from './listener.ts';
import { countsOf } from './listener-test-support.ts';
import { SipBuiltinUas } from './sip-builtin-uas.ts';
import { SipListener } from './sip-listener.ts';
import { RawUa, until } from './sip-raw-ua.ts';

const host = '127.0.0.1';

/**
 * Two SIP front ends of the same config on one port with SO_REUSEPORT (SPEC §13: worker threads, or a
 * process handing over), in front of the demo callee on its own port. Their notes go to each other as an
 * owner (ThreadedListener, or the hand-off) would pass them.
 */
describe('SipListener sharing its port (reusePort)', () => {
  const cleanups: Array<() => Promise<unknown> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function pair(transport: 'udp' | 'tcp') {
    const uas = new SipBuiltinUas(transport, host);
    const upstream = await uas.start();
    cleanups.push(() => uas.close());
    const notes = { a: [] as ListenerNote[], b: [] as ListenerNote[] };
    const make = (port: number, onNote: (note: ListenerNote) => void) => {
      const l = new SipListener({ host, port, transport, upstream, reusePort: true, endWaitMs: 200, onNote });
      cleanups.push(() => l.destroy());
      return l;
    };
    const a: SipListener = make(0, (note) => {
      notes.a.push(note);
      b.applyNote(note);
    });
    await a.open(false);
    const b: SipListener = make(a.port, (note) => {
      notes.b.push(note);
      a.applyNote(note);
    });
    return { a, b, notes };
  }

  async function ua(transport: 'udp' | 'tcp', port: number): Promise<RawUa> {
    const u = await RawUa.open(transport, { host, port });
    cleanups.push(() => u.close());
    return u;
  }

  async function twin(u: RawUa): Promise<RawUa> {
    const t = await u.twin();
    cleanups.push(() => t.close());
    return t;
  }

  for (const transport of ['udp', 'tcp'] as const) {
    it(`${transport}: Via and Record-Route name a port of its own; N=1 without reusePort stays as it was`, async () => {
      const { a } = await pair(transport);
      assert.ok(a.ownPort !== undefined && a.ownPort !== a.port);
      const u = await ua(transport, a.port);
      u.send(u.request('INVITE'));
      const ok = await u.response(200, 'INVITE');
      assert.match(
        getHeaderValues(ok, 'Record-Route')[0]!,
        new RegExp(`:${a.ownPort};transport=${transport};lr>$`),
      );

      const plain = new SipListener({ host, port: 0, transport, upstream: a.upstream!, endWaitMs: 200 });
      cleanups.push(() => plain.destroy());
      await plain.open(false);
      assert.equal(plain.ownPort, undefined);
      const v = await ua(transport, plain.port);
      v.send(v.request('INVITE'));
      const ok2 = await v.response(200, 'INVITE');
      assert.match(
        getHeaderValues(ok2, 'Record-Route')[0]!,
        new RegExp(`:${plain.port};transport=${transport};lr>$`),
      );
    });

    it(`${transport}: calls spread over both; BYEs from other ports reach either; every end is counted once, by the owner`, async () => {
      const { a, b, notes } = await pair(transport);
      await b.open(false);
      const calls = 16;
      const uas = await Promise.all(Array.from({ length: calls }, () => ua(transport, a.port)));
      const dialogs = await Promise.all(uas.map((u) => u.call()));
      const total = () => a.stats().sessions + b.stats().sessions;
      await until(() => total() === calls, `${calls} sessions`);
      assert.equal(a.stats().accepted + b.stats().accepted, calls);

      // A BYE as SIPp sends it: to the shared port, without the route set, from another port.
      const twins = await Promise.all(uas.map((u) => twin(u)));
      twins.forEach((t, i) =>
        t.send(t.request('BYE', { uri: dialogs[i]!.contact, toTag: dialogs[i]!.toTag })),
      );
      await Promise.all(twins.map((t) => t.response(200, 'BYE')));
      await until(() => total() === 0, 'every call ended');
      assert.equal(a.stats().forced + b.stats().forced, 0);
      // 16 BYEs from fresh ports: the kernel hands some to the listener without the dialog (all on the
      // owner has odds of 2^-16).
      const ended = [...notes.a, ...notes.b].filter((n) => n.event === 'ended');
      assert.ok(ended.length > 0, 'some BYEs were routed by the other listener');
      for (const n of [...notes.a, ...notes.b]) {
        assert.equal(n.kind, 'sip-dialog');
        assert.equal(JSON.stringify(JSON.parse(JSON.stringify(n))), JSON.stringify(n), 'plain JSON');
      }
    });

    it(`${transport}: close() gives the shared port to the other, keeps serving its call, counts its BYE from a note, then resolves`, async () => {
      const { a, b, notes } = await pair(transport);
      const counts = countsOf(a);
      const u = await ua(transport, a.port);
      const dialog = await u.call(); // only a is bound yet: the call is a's
      await until(() => a.stats().sessions === 1, 'a holds the call');
      await b.open(false);

      let closed = false;
      const closing = a.close().then(() => (closed = true));
      await until(() => a.gaveUpSharedPort, 'a gave the shared port up');
      assert.equal(a.state, 'closing');
      // A new call goes to b: a no longer listens on the shared port (its own port stays).
      const v = await ua(transport, a.port);
      const other = await v.call();
      await until(() => b.stats().sessions === 1, 'b holds the new call');
      assert.equal(a.stats().accepted, 1);
      assert.equal(closed, false, 'a waits for its call');

      // The first call's BYE to the shared port (over UDP from the same socket, over TCP on a new
      // connection): b routes it, a counts the end.
      const byer = transport === 'udp' ? u : await twin(u);
      byer.send(byer.request('BYE', { uri: dialog.contact, toTag: dialog.toTag }));
      await byer.response(200, 'BYE');
      await closing;
      assert.equal(a.state, 'closed');
      assert.deepEqual(counts, { opened: 1, closed: 1, forced: 0, upstreamFailed: 0 });
      assert.ok(
        notes.b.some((n) => n.event === 'ended'),
        'b told of the BYE',
      );

      v.send(v.request('BYE', { uri: other.contact, toTag: other.toTag, route: other.route }));
      await v.response(200, 'BYE');
      await until(() => b.stats().sessions === 0, 'b ends its call');
    });
  }
});
