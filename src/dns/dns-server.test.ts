import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as dnsPacket from 'dns-packet';
import { pino } from 'pino';
import type { PoolView } from '../core/index.ts';
import { DnsServer, type DnsLogger } from './dns-server.ts';
import {
  FQDN,
  addressesOf,
  closed,
  frame,
  member,
  queryBytes,
  readReplies,
  sampleView,
  tcpConnect,
  tcpExchange,
  udpExchange,
} from './dns-test-support.ts';

async function started(view: () => PoolView, opts: Partial<ConstructorParameters<typeof DnsServer>[0]> = {}) {
  const server = new DnsServer({ listen: { host: '127.0.0.1', port: 0 }, view, ...opts });
  await server.start();
  return server;
}

function decode(reply: Buffer | null) {
  assert.ok(reply, 'a reply');
  return dnsPacket.decode(reply) as dnsPacket.DecodedPacket & { rcode: string };
}

describe('DnsServer on real sockets', () => {
  let view = sampleView();
  let failView = false;
  let server: DnsServer;

  before(async () => {
    server = await started(() => {
      if (failView) throw new Error('store unreachable');
      return view;
    });
  });
  after(() => server.close());

  it('binds UDP and TCP on the same port', () => {
    assert.ok(server.port > 0);
    assert.deepEqual(server.address(), { host: '127.0.0.1', port: server.port });
    assert.equal(server.state, 'listening');
  });

  it('answers over UDP and over TCP', async () => {
    const udp = decode(await udpExchange(server.port, queryBytes(FQDN, 'A', { id: 11 })));
    assert.equal(udp.id, 11);
    assert.equal(addressesOf(udp).length, 3);
    const tcp = decode(await tcpExchange(server.port, queryBytes(`fe02.${FQDN}`, 'A', { id: 12 })));
    assert.equal(tcp.id, 12);
    assert.deepEqual(addressesOf(tcp), ['127.0.0.12']);
  });

  it('reads the view for every query, so a pause shows in the next answer', async () => {
    view = sampleView();
    view.members[0] = member('fe01', ['127.0.0.11'], { frontend: false });
    const res = decode(await udpExchange(server.port, queryBytes(FQDN, 'A')));
    assert.deepEqual(addressesOf(res).sort(), ['127.0.0.12', '127.0.0.13']);
    view = sampleView();
  });

  it('answers pipelined queries on one connection, in order', async () => {
    const socket = await tcpConnect(server.port);
    try {
      const ids = [101, 102, 103, 104];
      socket.write(Buffer.concat(ids.map((id) => frame(queryBytes(FQDN, 'A', { id })))));
      const replies = await readReplies(socket, ids.length);
      assert.deepEqual(
        replies.map((r) => decode(r).id),
        ids,
      );
    } finally {
      socket.destroy();
    }
  });

  it('truncates over UDP and gives the full answer over TCP', async () => {
    view = sampleView({
      members: Array.from({ length: 100 }, (_, i) => member(`m${i}`, [`10.0.0.${i + 1}`])),
    });
    try {
      const udp = decode(await udpExchange(server.port, queryBytes(FQDN, 'A', { edns: 4096 })));
      assert.ok(udp.flag_tc);
      assert.equal(udp.answers!.length, 0);
      const tcp = decode(await tcpExchange(server.port, queryBytes(FQDN, 'A', { edns: 4096 })));
      assert.equal(tcp.flag_tc, false);
      assert.equal(tcp.answers!.length, 100);
    } finally {
      view = sampleView();
    }
  });

  it('answers SERVFAIL when the view fails, and recovers', async () => {
    failView = true;
    try {
      assert.equal(decode(await udpExchange(server.port, queryBytes(FQDN, 'A'))).rcode, 'SERVFAIL');
    } finally {
      failView = false;
    }
    assert.equal(decode(await udpExchange(server.port, queryBytes(FQDN, 'A'))).rcode, 'NOERROR');
    assert.ok(server.stats().viewFailures >= 1);
  });

  it('answers SERVFAIL when the view holds a name it cannot encode', async () => {
    view = sampleView({ members: [member('x'.repeat(70), ['127.0.0.70'])] });
    try {
      const res = decode(await udpExchange(server.port, queryBytes(`_echo._tcp.${FQDN}`, 'SRV')));
      assert.equal(res.rcode, 'SERVFAIL');
    } finally {
      view = sampleView();
    }
  });

  it('answers FORMERR to malformed queries and ignores runts and responses', async () => {
    const none = dnsPacket.encode({ type: 'query', id: 77, questions: [] });
    const res = decode(await udpExchange(server.port, none));
    assert.equal(res.rcode, 'FORMERR');
    assert.equal(res.id, 77);
    assert.equal(await udpExchange(server.port, Buffer.alloc(5), 200), null);
    const response = queryBytes(FQDN, 'A');
    response[2]! |= 0x80;
    assert.equal(await udpExchange(server.port, response, 200), null);
  });

  it('counts what it did', () => {
    const stats = server.stats();
    assert.ok(stats.udpQueries > 0 && stats.tcpQueries > 0);
    assert.ok(stats.rcodes.noError > 0 && stats.rcodes.formErr > 0 && stats.rcodes.servFail > 0);
    assert.ok(stats.truncated >= 1);
    assert.ok(stats.dropped >= 2);
  });
});

describe('DnsServer TCP limits', () => {
  it('closes a connection that completes no query within the idle timeout', async () => {
    const server = await started(() => sampleView(), { tcpIdleTimeoutMs: 200 });
    try {
      const socket = await tcpConnect(server.port);
      assert.equal(await closed(socket, 2000), true);
      assert.equal(server.stats().tcpTimeouts, 1);
    } finally {
      await server.close();
    }
  });

  it('cuts off a slow-loris client that trickles bytes, and keeps answering others', async () => {
    const server = await started(() => sampleView(), { tcpIdleTimeoutMs: 300 });
    try {
      const socket = await tcpConnect(server.port);
      const slow = frame(queryBytes(FQDN, 'A'));
      let sent = 0;
      const trickle = setInterval(() => {
        if (sent < slow.length - 1 && !socket.destroyed) socket.write(slow.subarray(sent, ++sent));
      }, 50);
      try {
        assert.equal(await closed(socket, 3000), true);
      } finally {
        clearInterval(trickle);
      }
      assert.equal(decode(await tcpExchange(server.port, queryBytes(FQDN, 'A'))).rcode, 'NOERROR');
    } finally {
      await server.close();
    }
  });

  it('keeps a connection that keeps asking past the idle timeout', async () => {
    const server = await started(() => sampleView(), { tcpIdleTimeoutMs: 250 });
    const socket = await tcpConnect(server.port);
    try {
      for (let i = 0; i < 6; i++) {
        socket.write(frame(queryBytes(FQDN, 'A', { id: i })));
        const [reply] = await readReplies(socket, 1);
        assert.equal(decode(reply ?? null).id, i);
        await sleep(100);
      }
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  it('refuses connections beyond the cap', async () => {
    const server = await started(() => sampleView(), { maxTcpConnections: 2 });
    const sockets = [await tcpConnect(server.port), await tcpConnect(server.port)];
    try {
      const third = await tcpConnect(server.port);
      sockets.push(third);
      assert.equal(await closed(third, 2000), true);
      assert.equal(server.stats().tcpRefused, 1);
      assert.equal(server.stats().tcpConnections, 2);
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
  });

  it('closes the connection on a length prefix below 12', async () => {
    const server = await started(() => sampleView());
    try {
      for (const prefix of [
        [0, 0],
        [0, 11],
      ]) {
        const socket = await tcpConnect(server.port);
        socket.write(Buffer.from(prefix));
        assert.equal(await closed(socket, 2000), true);
      }
      assert.equal(server.stats().tcpFramingErrors, 2);
    } finally {
      await server.close();
    }
  });

  it('stops reading from a client that sends without reading, and serves others meanwhile', async () => {
    const server = await started(() => sampleView(), { maxTcpPendingBytes: 16 * 1024 });
    const greedy = await tcpConnect(server.port);
    try {
      greedy.pause();
      const burst = Buffer.concat(
        Array.from({ length: 20_000 }, (_, id) => frame(queryBytes(FQDN, 'A', { id }))),
      );
      greedy.write(burst);
      // Whatever the kernel's socket buffers absorb, what waits in the process stays near the cap.
      for (let i = 0; i < 6; i++) {
        await sleep(50);
        assert.ok(
          server.stats().tcpPendingBytes <= 16 * 1024 + 256 * 1024,
          `${server.stats().tcpPendingBytes}`,
        );
      }
      assert.equal(decode(await udpExchange(server.port, queryBytes(FQDN, 'A'))).rcode, 'NOERROR');
      greedy.resume();
      const replies = await readReplies(greedy, 20_000, 5000);
      assert.equal(replies.length, 20_000, 'all answered once the client reads');
    } finally {
      greedy.destroy();
      await server.close();
    }
  });
});

describe('DnsServer lifecycle', () => {
  it('start and close are idempotent, and a closed server stays closed', async () => {
    const server = new DnsServer({ listen: { host: '127.0.0.1', port: 0 }, view: () => sampleView() });
    const a = server.start();
    assert.equal(server.start(), a);
    await a;
    const port = server.port;
    const c = server.close();
    assert.equal(server.close(), c);
    await c;
    assert.equal(server.state, 'closed');
    await assert.rejects(server.start(), { code: 'EBB_DNS_CLOSED' });
    assert.equal(await udpExchange(port, queryBytes(FQDN, 'A'), 200), null);
    // The port is free again.
    const again = new DnsServer({ listen: { host: '127.0.0.1', port }, view: () => sampleView() });
    await again.start();
    await again.close();
  });

  it('closing before start, or during it, ends closed', async () => {
    const never = new DnsServer({ listen: { host: '127.0.0.1', port: 0 }, view: () => sampleView() });
    await never.close();
    assert.equal(never.state, 'closed');
    const racing = new DnsServer({ listen: { host: '127.0.0.1', port: 0 }, view: () => sampleView() });
    const starting = racing.start();
    await racing.close();
    await starting;
    assert.equal(racing.state, 'closed');
  });

  it('fails with EBB_LISTEN_FAILED when the port is taken', async () => {
    const first = await started(() => sampleView());
    try {
      const second = new DnsServer({
        listen: { host: '127.0.0.1', port: first.port },
        view: () => sampleView(),
      });
      await assert.rejects(second.start(), { code: 'EBB_LISTEN_FAILED' });
      assert.equal(second.state, 'closed');
    } finally {
      await first.close();
    }
  });

  it('takes a pino logger', async () => {
    const logger: DnsLogger = pino({ level: 'silent' });
    const server = await started(() => sampleView(), { logger });
    await server.close();
  });
});
