/**
 * The API server over a real socket as it hands over to a new process bound beside it (SPEC §13): a
 * keep-alive connection a client already holds to the old one is still answered, never closed under it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bindBesidePredecessor } from '../net/index.ts';
import { ApiServer } from './api-server.ts';
import { InMemoryPool } from './api-test-support.ts';

let port = 0;

/** One HTTP/1.1 exchange on `socket`: the head of the answer (status line and headers), lower-cased. */
function exchange(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: *(\d+)/i.exec(text);
      if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
        socket.off('data', onData).off('close', onClose);
        resolve(text.slice(0, end).toLowerCase());
      }
    };
    const onClose = () => reject(new Error(`the connection closed before an answer to ${path}: "${text}"`));
    socket.on('data', onData).once('close', onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  });
}

describe('ApiServer hand-off', () => {
  const pool = new InMemoryPool();
  before(async () => {
    await pool.start();
    // A port the kernel says is free (a random one may be some connection's ephemeral port).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
  });
  after(async () => {
    bindBesidePredecessor(false);
    await pool.close();
  });

  it('answers a request on a kept-alive connection after it stops listening, with Connection: close', async () => {
    const old = new ApiServer({ state: pool.state, controller: pool.controller }, `127.0.0.1:${port}`, {
      processMetrics: false,
    });
    await old.start();
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const first = await exchange(socket, '/healthz');
    assert.match(first, /^http\/1\.1 200/);
    assert.doesNotMatch(first, /connection: close/);

    bindBesidePredecessor(true);
    const successor = new ApiServer({ state: pool.state, controller: pool.controller }, `127.0.0.1:${port}`, {
      processMetrics: false,
    });
    await successor.start();
    let handedOff = false;
    const handOff = old.handOff(60_000).then(() => (handedOff = true));
    // The client's next request races nothing: the idle connection is still open and still answered.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(handedOff, false, 'the hand-off waits for the connection');
    const second = await exchange(socket, '/healthz');
    assert.match(second, /^http\/1\.1 200/);
    assert.match(second, /connection: close/, 'the old process says it closes the connection');
    // The old process closes it after that answer, and only then is its hand-off of the API done.
    await Promise.all([once(socket, 'end'), handOff]);
    socket.destroy();

    // New connections reach the successor, which keeps them alive.
    const fresh = connect(port, '127.0.0.1');
    await new Promise((resolve) => fresh.once('connect', resolve));
    assert.doesNotMatch(await exchange(fresh, '/healthz'), /connection: close/);
    fresh.destroy();
    await successor.close();
  });
});
