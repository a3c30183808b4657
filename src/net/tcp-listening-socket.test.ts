import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { AcceptError, ListenError } from '../core/index.ts';
import { bindUdp } from './udp-socket.ts';
import { TcpListeningSocket } from './tcp-listening-socket.ts';

const host = '127.0.0.1';

function listen(onConnection: (socket: Socket) => void = (s) => s.destroy()) {
  return TcpListeningSocket.listen({ host, port: 0, label: 'test', onConnection });
}

describe('TcpListeningSocket', () => {
  it('a taken port: ListenError with the errno, named in the message; nothing stays bound', async () => {
    const first = await listen();
    try {
      await assert.rejects(
        TcpListeningSocket.listen({ host, port: first.port, label: 'second', onConnection: () => {} }),
        (err: unknown) => {
          assert.ok(err instanceof ListenError);
          assert.equal(err.code, 'EBB_LISTEN_FAILED');
          assert.equal(err.errno, 'EADDRINUSE');
          assert.match(
            err.message,
            /^second: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*address already in use/,
          );
          return true;
        },
      );
    } finally {
      await first.close();
    }
  });

  it('an address this machine does not have: EADDRNOTAVAIL (TCP and UDP)', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never configured on a host.
    const tcp = TcpListeningSocket.listen({
      host: '192.0.2.1',
      port: 0,
      label: 'tcp',
      onConnection: () => {},
    });
    await assert.rejects(tcp, (err: unknown) => err instanceof ListenError && err.errno === 'EADDRNOTAVAIL');
    const udp = bindUdp({ host: '192.0.2.1', port: 0, label: 'udp' });
    await assert.rejects(udp, (err: unknown) => {
      assert.ok(err instanceof ListenError);
      assert.equal(err.errno, 'EADDRNOTAVAIL');
      assert.match(err.message, /not available/);
      return true;
    });
  });

  it('close() accepts what the kernel already queued, then refuses: no queued client is reset', async () => {
    const accepted: Socket[] = [];
    const socket = await listen((s) => accepted.push(s));
    const clients = 20;
    // Clients in another thread connect while this thread is blocked: their handshakes complete in the
    // kernel and wait in the accept queue, then close() runs before this thread's event loop turns once.
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      const { connect } = require('node:net');
      const results = [];
      let connected = 0;
      for (let i = 0; i < workerData.clients; i++) {
        const c = connect({ host: '127.0.0.1', port: workerData.port });
        c.on('connect', () => {
          if (++connected === workerData.clients) {
            Atomics.store(workerData.flag, 0, 1);
            Atomics.notify(workerData.flag, 0);
          }
        });
        c.on('error', (err) => results.push(err.code));
        c.on('close', () => {
          results.push('closed');
          if (results.length === workerData.clients) parentPort.postMessage(results);
        });
      }`,
      { eval: true, workerData: { port: socket.port, clients, flag } },
    );
    const results = new Promise<string[]>((done) => worker.once('message', done));
    assert.equal(Atomics.wait(flag, 0, 0, 10_000), 'ok', 'the clients connected');
    const closing = socket.close();
    await closing;
    assert.equal(socket.accepted, clients, 'every queued connection was accepted before the close');
    for (const s of accepted) s.end();
    assert.deepEqual(await results, Array(clients).fill('closed'), 'closed politely, none reset');
    await worker.terminate();
    await socket.finished;
    await assert.rejects(
      new Promise((ok, fail) => connect({ host, port: socket.port }).once('connect', ok).once('error', fail)),
      { code: 'ECONNREFUSED' },
    );
  });

  it('a failed accept is counted and reported once per errno with its code, not dropped', async () => {
    let server: Server | undefined;
    const reports: AcceptError[] = [];
    const socket = await TcpListeningSocket.listen({
      host,
      port: 0,
      label: 'test',
      onConnection: (s) => s.destroy(),
      onAcceptError: (err) => reports.push(err),
      createServer: (options, onConnection) => (server = createServer(options, onConnection)),
    });
    // What Node's net.js emits when libuv passes a failed accept up (`onconnection(err)`).
    const failure = () => Object.assign(new Error('accept ENFILE'), { code: 'ENFILE', syscall: 'accept' });
    for (let i = 0; i < 5; i++) server!.emit('error', failure());
    assert.equal(socket.acceptErrors, 5);
    assert.equal(reports.length, 1, 'reported once, not once per failure');
    assert.equal(reports[0]!.code, 'EBB_ACCEPT_FAILED');
    assert.equal(reports[0]!.errno, 'ENFILE');
    assert.match(reports[0]!.message, /^test: accept on 127\.0\.0\.1:\d+ failed: accept ENFILE$/);
    const client = connect({ host, port: socket.port });
    await new Promise((ok) => client.once('close', ok).on('error', () => {}));
    assert.equal(socket.accepted, 1, 'the socket goes on listening');
    await socket.close();
  });
});
