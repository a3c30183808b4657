import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig, type ListenerConfig, type PoolConfig } from '../../config/index.ts';
import { ListenError } from '../../core/index.ts';
import { createListener } from '../create-listener.ts';
import type { Listener, ListenerNote } from '../listener.ts';
import { SipBuiltinUas } from '../sip-builtin-uas.ts';
import { SipListener } from '../sip-listener.ts';
import { RawUa } from '../sip-raw-ua.ts';
import { ThreadedListener, threadable } from './threaded-listener.ts';

const host = '127.0.0.1';

/** A pool config with one member whose service has the given listeners, parsed as Ebb parses it. */
function configWith(listeners: object[], workers = 2): PoolConfig {
  return parseConfig(
    JSON.stringify({
      pool: { name: 'pool1', fqdn: 'pool1.ebb.test' },
      agent: { workers },
      members: [{ id: 'm1', address: host, services: [{ id: 'echo', listeners }] }],
    }),
  );
}

function build(
  config: PoolConfig,
  onChange: () => void = () => {},
  onNote?: (note: ListenerNote) => void,
): Listener {
  const service = config.members[0]!.services[0]!;
  return createListener(
    host,
    service.listeners[0]!,
    { onChange, ...(onNote ? { onNote } : {}) },
    {
      member: 'm1',
      service,
      view: () => ({ name: 'pool1', fqdn: 'pool1.ebb.test', dnsTtl: 5, members: [] }),
      workers: config.agent.workers,
    },
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A client that connects, echoes once, and stays open. */
async function held(port: number): Promise<Socket> {
  const socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.write('hi');
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  return socket;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(20);
  assert.ok(check(), what);
}

/**
 * A tcp proxy listener on two worker threads (SPEC §13, `agent.workers`): real sockets, a real echo
 * upstream. Counts add up exactly under 200 concurrent connections, a pause refuses on every thread while
 * every connection goes on, a resume accepts again, the deadline ends the rest as forced.
 */
describe('ThreadedListener (tcp, 2 threads)', () => {
  let upstream: Server;
  let upstreamPort: number;
  const upstreamSockets = new Set<Socket>();
  before(async () => {
    upstream = createServer((s) => {
      upstreamSockets.add(s);
      s.on('close', () => upstreamSockets.delete(s));
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
    });
    await new Promise<void>((r) => upstream.listen(0, host, () => r()));
    upstreamPort = (upstream.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => upstream.close(() => r())));

  it('is what createListener builds for a tcp proxy when agent.workers > 1, and not for builtins', async () => {
    const port = await freePort();
    const proxied = build(configWith([{ protocol: 'tcp', port, upstream: `${host}:${upstreamPort}` }]));
    assert.ok(proxied instanceof ThreadedListener);
    assert.match(proxied.description, /\(2 threads\)$/);
    const builtin = build(configWith([{ protocol: 'tcp', port, upstream: 'builtin:echo' }]));
    assert.ok(!(builtin instanceof ThreadedListener));
    const single = build(configWith([{ protocol: 'tcp', port, upstream: `${host}:${upstreamPort}` }], 1));
    assert.ok(!(single instanceof ThreadedListener));
    const tls = configWith([
      { protocol: 'http', port, upstream: `${host}:${upstreamPort}`, tls: { cert: '/x.pem', key: '/x.key' } },
    ]).members[0]!.services[0]!.listeners[0] as ListenerConfig;
    assert.equal(threadable(tls), false, 'TLS http stays on the agent thread');
  });

  it('200 concurrent connections: counted exactly; a pause refuses on every thread; they all go on; resume; deadline', async () => {
    const port = await freePort();
    let changes = 0;
    const listener = build(
      configWith([{ protocol: 'tcp', port, upstream: `${host}:${upstreamPort}` }]),
      () => changes++,
    ) as ThreadedListener;
    await listener.open(false);
    try {
      assert.equal(listener.threads, 2);
      const sockets = await Promise.all(Array.from({ length: 200 }, () => held(port)));
      await until('200 sessions counted', () => listener.stats().sessions === 200);
      assert.equal(listener.stats().byKind['connections'], 200);
      const each = listener.threadStats().map((t) => t.accepted);
      assert.ok(
        each.every((n) => n > 0),
        `the kernel spread them over both threads: ${each.join(' + ')}`,
      );
      assert.equal(each[0]! + each[1]!, 200);
      assert.ok(changes > 0);

      await listener.refuse();
      assert.equal(listener.state, 'refusing');
      // Every thread has closed its socket: a run of new connects, each a new 4-tuple, is refused.
      for (let i = 0; i < 20; i++) assert.ok(await refused(port), `connect ${i} refused while paused`);
      for (const s of sockets.slice(0, 10)) {
        s.write('still');
        await new Promise<void>((resolve) => s.once('data', () => resolve()));
      }

      await listener.accept();
      const late = await held(port);
      await until('201 sessions', () => listener.stats().sessions === 201);

      for (const s of sockets.slice(0, 100)) s.end();
      await until('101 left', () => listener.stats().sessions === 101);
      assert.equal(listener.stats().accepted, 201);

      const forced = await listener.endSessions();
      assert.equal(forced, 101);
      await until('none left', () => listener.stats().sessions === 0);
      assert.equal(listener.stats().forced, 101);
      late.destroy();
      for (const s of sockets) s.destroy();
    } finally {
      await listener.destroy();
    }
    assert.equal(listener.state, 'closed');
    assert.equal(listener.threads, 0);
    // What the threads counted outlives them.
    assert.equal(listener.stats().accepted, 201);
    assert.equal(listener.stats().sessions, 0);
  });

  it('close waits for the sessions on every thread, then lets go of the port', async () => {
    const port = await freePort();
    const listener = build(configWith([{ protocol: 'tcp', port, upstream: `${host}:${upstreamPort}` }]));
    await listener.open(false);
    const sockets = await Promise.all(Array.from({ length: 10 }, () => held(port)));
    let closed = false;
    const closing = listener.close().then(() => (closed = true));
    await until('refusing while closing', () => listener.state === 'closing');
    assert.ok(await refused(port));
    await sleep(100);
    assert.equal(closed, false, 'the close waits for the 10 sessions');
    for (const s of sockets) s.end();
    await closing;
    assert.equal(listener.state, 'closed');
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen({ port, host, exclusive: true }, () => resolve());
    });
    await new Promise<void>((r) => again.close(() => r()));
  });

  it('a port another process holds: open fails with a ListenError naming EADDRINUSE, nothing left bound', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, host, () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const listener = build(
        configWith([{ protocol: 'tcp', port, upstream: `${host}:${upstreamPort}` }]),
      ) as ThreadedListener;
      await assert.rejects(listener.open(false), (err: unknown) => {
        assert.ok(err instanceof ListenError, String(err));
        assert.equal(err.errno, 'EADDRINUSE');
        return true;
      });
      assert.equal(listener.state, 'closed');
      assert.equal(listener.threads, 0);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});

/**
 * A sip proxy listener on two worker threads (SPEC §13): each thread has a port of its own in its Via and
 * Record-Route; a BYE that the kernel gives to the thread without the dialog is routed there, and its note
 * reaches the owner through the ThreadedListener, which counts the end.
 */
describe('ThreadedListener (sip, 2 threads)', () => {
  it('sip over udp and tcp to an address is threaded; builtin, tls and ws are not', () => {
    const sip = (extra: object) =>
      configWith([{ protocol: 'sip', port: 5060, ...extra }]).members[0]!.services[0]!.listeners[0]!;
    assert.equal(threadable(sip({ transport: 'udp', upstream: `${host}:5070` })), true);
    assert.equal(threadable(sip({ transport: 'tcp', upstream: `${host}:5070` })), true);
    assert.equal(threadable(sip({ transport: 'udp', upstream: 'builtin:sip-uas' })), false);
    assert.equal(threadable(sip({ transport: 'ws', upstream: `${host}:5070` })), false);
    const tls = { transport: 'tls', upstream: `${host}:5070`, tls: { cert: '/x.pem', key: '/x.key' } };
    assert.equal(threadable(sip(tls)), false);
  });

  it('hand-off: closed beside a listener elsewhere, its call ends by a note given to applyNote', async () => {
    const uas = new SipBuiltinUas('udp', host);
    const upstream = await uas.start();
    const port = await freePort();
    const old = build(
      configWith([
        { protocol: 'sip', transport: 'udp', port, upstream: `${upstream.host}:${upstream.port}` },
      ]),
    ) as ThreadedListener;
    // The new process's listener: the same config, bound beside with SO_REUSEPORT.
    const next = new SipListener({
      host,
      port,
      transport: 'udp',
      upstream,
      reusePort: true,
      onNote: (n) => old.applyNote(n),
    });
    const u = await RawUa.open('udp', { host, port });
    try {
      await old.open(false);
      const dialog = await u.call();
      await until('the call is counted', () => old.stats().sessions === 1);
      await next.open(false);
      const closing = old.close();
      await until('closing', () => old.state === 'closing');
      // Whichever listener the BYE reaches (a thread still giving the port up, or the new one), a counts it.
      u.send(u.request('BYE', { uri: dialog.contact, toTag: dialog.toTag }));
      await u.response(200, 'BYE');
      await closing;
      assert.equal(old.stats().sessions, 0);
      assert.equal(old.stats().forced, 0);
      assert.equal(next.stats().accepted, 0, 'the BYE was no new session there');
    } finally {
      u.close();
      await old.destroy();
      await next.destroy();
      await uas.close();
    }
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`${transport}: calls from many ports counted exactly; BYEs from other ports end them all; notes go up too; close waits for a call`, async () => {
      const uas = new SipBuiltinUas(transport, host);
      const upstream = await uas.start();
      const port = await freePort();
      const notes: ListenerNote[] = [];
      const listener = build(
        configWith([{ protocol: 'sip', transport, port, upstream: `${upstream.host}:${upstream.port}` }]),
        () => {},
        (note) => notes.push(note),
      ) as ThreadedListener;
      assert.ok(listener instanceof ThreadedListener);
      const phones: RawUa[] = [];
      const phone = async (like?: RawUa) => {
        const p = like ? await like.twin() : await RawUa.open(transport, { host, port });
        phones.push(p);
        return p;
      };
      await listener.open(false);
      try {
        const calls = 16;
        const callers = await Promise.all(Array.from({ length: calls }, () => phone()));
        const dialogs = await Promise.all(callers.map((c) => c.call()));
        await until('16 sessions', () => listener.stats().sessions === calls);
        const each = listener.threadStats().map((t) => t.accepted);
        assert.ok(
          each.every((n) => n > 0),
          `the kernel spread them over both threads: ${each.join(' + ')}`,
        );

        // As SIPp does: to the shared port, no route set, here from a new port each.
        const byers = await Promise.all(callers.slice(1).map((c) => phone(c)));
        byers.forEach((b, i) =>
          b.send(b.request('BYE', { uri: dialogs[i + 1]!.contact, toTag: dialogs[i + 1]!.toTag })),
        );
        await Promise.all(byers.map((b) => b.response(200, 'BYE')));
        await until('1 session left', () => listener.stats().sessions === 1);
        assert.ok(
          notes.some((n) => n.event === 'ended'),
          'some BYEs reached the other thread (odds of none: 2^-15), and their notes went up',
        );

        let closed = false;
        const closing = listener.close().then(() => (closed = true));
        await until('closing', () => listener.state === 'closing');
        await sleep(50);
        assert.equal(closed, false, 'close waits for the last call');
        // The shared port is given up (hand-off: SPEC §13); the route set leads to the owner's own port.
        const own = Number(/:(\d+);/.exec(dialogs[0]!.route[0]!)![1]);
        const last = await callers[0]!.twin({ host, port: own });
        phones.push(last);
        last.send(
          last.request('BYE', {
            uri: dialogs[0]!.contact,
            toTag: dialogs[0]!.toTag,
            route: dialogs[0]!.route,
          }),
        );
        await last.response(200, 'BYE');
        await closing;
        assert.deepEqual(
          {
            sessions: listener.stats().sessions,
            accepted: listener.stats().accepted,
            forced: listener.stats().forced,
          },
          { sessions: 0, accepted: calls, forced: 0 },
        );
      } finally {
        await listener.destroy();
        for (const p of phones) p.close();
        await uas.close();
      }
    });
  }
});
