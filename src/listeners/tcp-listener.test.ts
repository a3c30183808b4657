import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { InvalidTransitionError, ListenError, type EbbError } from '../core/index.ts';
import { countsOf } from './listener-test-support.ts';
import { TcpListener } from './tcp-listener.ts';

const host = '127.0.0.1';

/**
 * A port nobody listens on right now. The listener re-binds the same port on accept() after refuse(), so
 * it needs a fixed port rather than 0; the OS picks one through port 0 first.
 */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A real upstream server on port 0; `handler` decides what it does with each connection. */
async function startUpstream(
  handler: (socket: Socket) => void,
  allowHalfOpen: boolean,
): Promise<{ server: Server; port: number; stop: () => Promise<void> }> {
  const connections = new Set<Socket>();
  const server = createServer({ allowHalfOpen }, (socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    socket.on('error', () => {});
    handler(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of connections) socket.destroy();
    });
  return { server, port: (server.address() as AddressInfo).port, stop };
}

/**
 * An echo server (it answers a FIN with its own) that completes no new handshake until `release()`, so a
 * connect to it stays pending for as long as a test needs, whatever the machine's load. It runs in a
 * worker thread blocked in Atomics.wait, so nothing is ever accepted; with a listen(2) backlog of 1 the
 * kernel's accept queue is full after two connects, and it drops every further SYN. After `release()` the
 * worker's event loop runs again, and a held connect gets through with the client's SYN retransmission
 * (about a second: RFC 6298 §2's initial RTO).
 */
async function heldUpstream(): Promise<{ port: number; release: () => void; stop: () => Promise<void> }> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const source = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { createServer } = require('node:net');
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
      parentPort.postMessage(server.address().port);
      Atomics.wait(workerData.flag, 0, 0);
    });`;
  const worker = new Worker(source, { eval: true, workerData: { flag } });
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  // Fill the accept queue until a connect stays pending: from then on every SYN is dropped.
  const fillers: Socket[] = [];
  for (let held = false; !held && fillers.length < 8;) {
    const filler = connect({ host, port });
    filler.on('error', () => {});
    fillers.push(filler);
    held = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(true), 200);
      filler.once('connect', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }
  const release = () => {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };
  const stop = async () => {
    release();
    for (const filler of fillers) filler.destroy();
    await worker.terminate();
  };
  return { port, release, stop };
}

function openSocket(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: options.allowHalfOpen ?? false });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function connectError(port: number): Promise<string> {
  try {
    const socket = await openSocket(port);
    socket.destroy();
    return 'connected';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

/** Everything the socket receives until the peer ends its side (or the socket closes). */
function readToEnd(socket: Socket, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`no end within ${timeoutMs} ms; got ${JSON.stringify(text)}`)),
      timeoutMs,
    );
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const done = () => {
      clearTimeout(timer);
      resolve(text);
    };
    socket.once('end', done);
    socket.once('close', done);
  });
}

/** Writes `text` and resolves with the next `expect.length` characters received. */
function exchange(
  socket: Socket,
  text: string,
  expectLength = text.length,
  timeoutMs = 3000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(
        new Error(`no reply to ${JSON.stringify(text)} within ${timeoutMs} ms; got ${JSON.stringify(got)}`),
      );
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length >= expectLength) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.write(text);
  });
}

function closed(socket: Socket, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error('socket not closed')), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function until(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('TcpListener on real sockets', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  const sockets: Socket[] = [];
  const track = (socket: Socket) => {
    sockets.push(socket);
    return socket;
  };

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  after(() => {
    for (const socket of sockets) socket.destroy();
  });

  async function listener(
    upstream: { host: string; port: number } | 'echo',
    forceGraceMs?: number,
    onChange?: (urgent: boolean) => void,
    onError?: (err: EbbError) => void,
  ) {
    const port = await freePort();
    const l = new TcpListener({
      host,
      port,
      upstream,
      ...(forceGraceMs ? { forceGraceMs } : {}),
      ...(onChange ? { onChange } : {}),
      ...(onError ? { onError } : {}),
    });
    cleanups.push(async () => void (await l.destroy()));
    return { l, port, counts: countsOf(l) };
  }

  async function upstream(handler: (socket: Socket) => void, allowHalfOpen = false) {
    const u = await startUpstream(handler, allowHalfOpen);
    cleanups.push(u.stop);
    return { host, port: u.port };
  }

  it('describes itself', async () => {
    const { l, port } = await listener('echo');
    assert.equal(l.description, `tcp 127.0.0.1:${port} → builtin:echo`);
    const v6 = new TcpListener({
      host: '::1',
      port: 7000,
      upstream: { host, port: 1 },
    });
    assert.equal(v6.description, 'tcp [::1]:7000 → 127.0.0.1:1');
  });

  it('proxies both ways to a real upstream', async () => {
    const received: string[] = [];
    const up = await upstream((socket) => {
      socket.write('hello from upstream\n');
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk.toString());
        socket.write(`got ${chunk.toString()}`);
      });
    });
    const { l, port, counts } = await listener(up);
    await l.open(false);
    const client = track(await openSocket(port));
    const greeting = await new Promise<string>((resolve) =>
      client.once('data', (c: Buffer) => resolve(c.toString())),
    );
    assert.equal(greeting, 'hello from upstream\n');
    assert.equal(await exchange(client, 'ping', 'got ping'.length), 'got ping');
    assert.deepEqual(received, ['ping']);
    assert.equal(counts.opened, 1);
    assert.equal(l.stats().sessions, 1);
    client.end();
    await closed(client);
    await until(() => counts.closed === 1, 'session closed');
    assert.equal(counts.forced, 0);
    assert.equal(l.stats().sessions, 0);
  });

  it('half-close: the client ends its side and still gets the upstream reply', async () => {
    const up = await upstream((socket) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      // Reply only once the client has finished writing, then close our side too.
      socket.on('end', () => socket.end(text.toUpperCase()));
    }, true);
    const { l, port, counts } = await listener(up);
    await l.open(false);
    const client = track(await openSocket(port, { allowHalfOpen: true }));
    const reply = readToEnd(client);
    client.write('hello, ');
    client.end('half-closed world');
    assert.equal(await reply, 'HELLO, HALF-CLOSED WORLD');
    client.end();
    await until(() => counts.closed === 1, 'session closed');
    assert.equal(l.stats().sessions, 0);
  });

  it('builtin echo echoes, half-close included', async () => {
    const { l, port, counts } = await listener('echo');
    await l.open(false);
    const client = track(await openSocket(port, { allowHalfOpen: true }));
    assert.equal(await exchange(client, 'abc'), 'abc');
    const big = 'x'.repeat(256 * 1024);
    assert.equal((await exchange(client, big, big.length)).length, big.length);
    const rest = readToEnd(client);
    client.end('last words');
    assert.equal(await rest, 'last words');
    await until(() => counts.closed === 1, 'session closed');
    assert.equal(counts.forced, 0);
  });

  it('open(true) does not listen until accept()', async () => {
    const { l, port, counts } = await listener('echo');
    await l.open(true);
    assert.equal(l.listening, false);
    assert.equal(await connectError(port), 'ECONNREFUSED');
    await l.accept();
    await l.accept(); // idempotent
    assert.equal(l.listening, true);
    const client = track(await openSocket(port));
    assert.equal(await exchange(client, 'x'), 'x');
    assert.equal(counts.opened, 1);
  });

  it('refuse(): new connects are refused at once while existing ones keep flowing; accept() again', async () => {
    const up = await upstream((socket) => socket.pipe(socket));
    const { l, port, counts } = await listener(up);
    await l.open(false);
    const existing = track(await openSocket(port));
    assert.equal(await exchange(existing, 'before'), 'before');

    await l.refuse();
    await l.refuse(); // idempotent
    assert.equal(l.listening, false);
    for (let i = 0; i < 10; i++) assert.equal(await connectError(port), 'ECONNREFUSED');
    assert.equal(await exchange(existing, 'during'), 'during');
    assert.equal(l.stats().sessions, 1);
    assert.equal(counts.opened, 1, 'no refused connect became a session');

    await l.accept();
    const fresh = track(await openSocket(port));
    assert.equal(await exchange(fresh, 'after'), 'after');
    assert.equal(await exchange(existing, 'still'), 'still');
    assert.equal(l.stats().sessions, 2);
    assert.equal(counts.forced, 0);
  });

  it('endSessions() closes every session, reports the count and counts them as forced', async () => {
    const up = await upstream((socket) => socket.pipe(socket));
    const { l, port, counts } = await listener(up);
    await l.open(false);
    const clients = await Promise.all(Array.from({ length: 5 }, async () => track(await openSocket(port))));
    await until(() => l.stats().sessions === 5, '5 sessions');
    const allClosed = Promise.all(clients.map((c) => closed(c)));
    assert.equal(await l.endSessions(), 5);
    await allClosed;
    assert.equal(l.stats().sessions, 0);
    assert.equal(counts.closed, 5);
    assert.equal(counts.forced, 5);
    assert.equal(l.listening, true, 'ending sessions does not stop listening');
    assert.equal(await l.endSessions(), 0);
  });

  it('endSessions() resets a peer that does not finish within the grace time', async () => {
    const { l, port, counts } = await listener('echo', 50);
    await l.open(false);
    // A half-open-tolerant client that never ends its side.
    const stubborn = track(await openSocket(port, { allowHalfOpen: true }));
    const ended = new Promise<void>((resolve) => stubborn.once('end', () => resolve()));
    await until(() => l.stats().sessions === 1, '1 session');
    const started = Date.now();
    assert.equal(await l.endSessions(), 1);
    assert.ok(Date.now() - started < 2000, 'endSessions does not wait for the peer beyond the grace time');
    await ended;
    assert.equal(l.stats().sessions, 0);
    assert.equal(counts.forced, 1);
    // Ebb's side is gone: the peer's writes are answered with a reset, and the peer's socket closes.
    for (let i = 0; i < 50 && !stubborn.destroyed; i++) {
      stubborn.write('anyone?');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(stubborn.destroyed, true);
  });

  it('destroy() stops listening and ends the sessions left; it is idempotent', async () => {
    const { l, port, counts } = await listener('echo');
    await l.open(false);
    const client = track(await openSocket(port));
    await until(() => l.stats().sessions === 1, '1 session');
    const destroying = l.destroy();
    assert.equal(l.destroy(), destroying, 'the same promise');
    assert.equal(await destroying, 1);
    assert.equal(await l.destroy(), 1);
    await closed(client);
    assert.equal(await connectError(port), 'ECONNREFUSED');
    assert.equal(counts.forced, 1);
    assert.equal(l.state, 'closed');
  });

  it('close() stops listening and resolves once the sessions have ended by themselves', async () => {
    const { l, port, counts } = await listener('echo');
    await l.open(false);
    const client = track(await openSocket(port));
    await until(() => l.stats().sessions === 1, '1 session');
    let done = false;
    const closing = l.close().then(() => (done = true));
    assert.equal(l.close(), l.close(), 'the same promise');
    await until(() => !l.listening, 'listening socket closed');
    assert.equal(l.state, 'closing');
    assert.equal(await connectError(port), 'ECONNREFUSED');
    assert.equal(await exchange(client, 'still here'), 'still here', 'the session goes on');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(done, false, 'close waits for the session');
    client.end();
    await closing;
    assert.equal(l.state, 'closed');
    assert.equal(counts.forced, 0, 'nothing was forced');
    assert.equal(await l.destroy(), 0, 'destroy after close ends nothing');
  });

  it('destroy() during a pending close() ends the sessions the close waits for', async () => {
    const { l, port, counts } = await listener('echo');
    await l.open(false);
    const clients = [track(await openSocket(port)), track(await openSocket(port))];
    await until(() => l.stats().sessions === 2, '2 sessions');
    const closing = l.close();
    assert.equal(await l.destroy(), 2);
    await closing;
    await Promise.all(clients.map((c) => closed(c)));
    assert.equal(counts.forced, 2);
    assert.equal(l.state, 'closed');
  });

  it('is a state machine: illegal moves reject with InvalidTransitionError; it opens again after close', async () => {
    const { l, port } = await listener('echo');
    assert.equal(l.state, 'closed');
    await assert.rejects(l.refuse(), InvalidTransitionError);
    await assert.rejects(l.accept(), InvalidTransitionError);
    await l.open(true);
    assert.equal(l.state, 'refusing');
    await assert.rejects(l.open(false), InvalidTransitionError, 'open twice');
    await l.accept();
    assert.equal(l.state, 'accepting');
    await l.refuse();
    assert.equal(l.state, 'refusing');
    await l.close();
    assert.equal(l.state, 'closed');
    await assert.rejects(l.refuse(), (err: unknown) => {
      assert.ok(err instanceof InvalidTransitionError);
      assert.match(err.message, /cannot go from closed to refusing/);
      return true;
    });
    await l.open(false);
    const client = track(await openSocket(port));
    assert.equal(await exchange(client, 'again'), 'again');
    const closing = l.close();
    assert.notEqual(closing, undefined);
    await assert.rejects(l.accept(), InvalidTransitionError, 'no accept while closing');
    client.end();
    await closing;
  });

  it('stats() is a snapshot, and onChange is told synchronously as sessions change', async () => {
    const seen: number[] = [];
    const holder: { l?: TcpListener } = {};
    const { l, port } = await listener('echo', undefined, () => seen.push(holder.l!.stats().sessions));
    holder.l = l;
    await l.open(false);
    const client = track(await openSocket(port));
    await until(() => l.stats().sessions === 1, '1 session');
    const snapshot = l.stats();
    client.end();
    await until(() => l.stats().sessions === 0, 'closed');
    assert.deepEqual(snapshot, {
      sessions: 1,
      byKind: { connections: 1 },
      accepted: 1,
      refused: 0,
      forced: 0,
      upstreamFailures: 0,
      acceptErrors: 0,
      idleConnections: 0,
    });
    assert.deepEqual(seen, [1, 0], 'told at each change, with the new count already in stats()');
  });

  it('sessions are counted exactly under 200 concurrent connections opened and closed randomly', async () => {
    const up = await upstream((socket) => socket.pipe(socket));
    const { l, port, counts } = await listener(up);
    await l.open(false);
    const total = 200;
    const clients = await Promise.all(
      Array.from({ length: total }, async () => track(await openSocket(port))),
    );
    await until(() => counts.opened === total, `${total} opened`);
    assert.equal(l.stats().sessions, total);
    // Every session really reaches the upstream.
    const echoes = await Promise.all(clients.slice(0, 20).map((c, i) => exchange(c, `#${i}`)));
    assert.deepEqual(
      echoes,
      Array.from({ length: 20 }, (_, i) => `#${i}`),
    );

    // Close half in a random order, some politely (FIN) and some abruptly (RST), while new ones arrive.
    const order = clients.map((c) => ({ c, key: Math.random() })).sort((a, b) => a.key - b.key);
    const firstHalf = order.slice(0, total / 2);
    const late = Promise.all(Array.from({ length: 20 }, async () => track(await openSocket(port))));
    await Promise.all(
      firstHalf.map(async ({ c }, i) => {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 20)));
        if (i % 3 === 0) c.destroy();
        else c.end();
        await closed(c);
      }),
    );
    const lateClients = await late;
    await until(() => counts.closed === total / 2 && counts.opened === total + 20, 'first half closed');
    assert.equal(l.stats().sessions, total / 2 + 20);

    for (const { c } of order.slice(total / 2)) {
      if (Math.random() < 0.5) c.destroy();
      else c.end();
    }
    for (const c of lateClients) c.end();
    await until(() => counts.closed === total + 20, 'all closed');
    assert.equal(l.stats().sessions, 0);
    assert.equal(counts.opened, total + 20);
    assert.equal(counts.forced, 0);
    assert.equal(counts.upstreamFailed, 0);
  });

  it('a client that sends its FIN before the upstream has connected: the FIN goes on, the session ends', async () => {
    const up = await heldUpstream();
    cleanups.push(up.stop);
    const { l, port, counts } = await listener({ host, port: up.port });
    await l.open(false);
    // A health check (`nc -z`): connect, then FIN with no data. And a client whose words and FIN both
    // arrive before the upstream is there.
    const probe = track(await openSocket(port));
    probe.end();
    const early = track(await openSocket(port, { allowHalfOpen: true }));
    const reply = readToEnd(early, 15_000);
    early.end('early words');
    await until(
      () => l.stats().sessions === 2 && probe.writableFinished && early.writableFinished,
      'FINs sent',
    );
    // Let Ebb read both FINs while its upstream connects are still held.
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(l.stats().sessions, 2, 'nothing can have ended yet: the upstream holds every connect');

    up.release();
    await until(
      () => counts.closed === 2,
      'both sessions end once the upstream connects (a FIN read before that must not be lost)',
      15_000,
    );
    assert.equal(await reply, 'early words');
    await closed(probe);
    assert.equal(counts.forced, 0);
    assert.equal(counts.upstreamFailed, 0);
  });

  it('an unreachable upstream closes the client, counts upstreamFailed and crashes nothing', async () => {
    const deadPort = await freePort();
    const errors: EbbError[] = [];
    const { l, port, counts } = await listener({ host, port: deadPort }, undefined, undefined, (err) =>
      errors.push(err),
    );
    await l.open(false);
    for (let i = 0; i < 3; i++) {
      const client = track(await openSocket(port));
      client.write('anyone there?');
      await closed(client);
    }
    await until(() => counts.closed === 3, '3 sessions closed');
    assert.equal(counts.upstreamFailed, 3);
    assert.equal(counts.opened, 3);
    assert.equal(counts.forced, 0);
    assert.equal(l.stats().sessions, 0);
    assert.equal(l.listening, true, 'the listener goes on listening');
    assert.deepEqual(
      errors.map((e) => [e.code, e.details?.errno]),
      [['EBB_UPSTREAM_CONNECT_FAILED', 'ECONNREFUSED']],
      'said once, with its errno',
    );
  });

  it('an upstream that resets mid-session closes the client and counts no upstream failure', async () => {
    const up = await upstream((socket) => socket.on('data', () => socket.resetAndDestroy()));
    const { l, port, counts } = await listener(up);
    await l.open(false);
    const client = track(await openSocket(port));
    client.write('boom');
    await closed(client);
    await until(() => counts.closed === 1, 'closed');
    assert.equal(counts.upstreamFailed, 0);
    assert.equal(l.stats().sessions, 0);
  });

  it('binding a port in use fails with ListenError', async () => {
    const taken = await upstream(() => {});
    const l = new TcpListener({ host, port: taken.port, upstream: 'echo' });
    await assert.rejects(l.open(false), (err: unknown) => {
      assert.ok(err instanceof ListenError);
      assert.equal(err.code, 'EBB_LISTEN_FAILED');
      assert.match(err.message, /EADDRINUSE/);
      assert.equal(err.errno, 'EADDRINUSE');
      return true;
    });
    assert.equal(l.listening, false);
    assert.equal(l.state, 'closed');
  });
});
