/**
 * The http listener's lifecycle (the Listener interface, src/listeners/listener.ts): open refusing,
 * close() waits for sessions to end by themselves, destroy() ends them (forced), counters stay
 * monotonic across close and open, a taken port is a ListenError.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { ListenError } from '../src/core/index.ts';
import { HttpListener } from '../src/listeners/http/index.ts';
import { freePort } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';
import { closed, eventually, openWebSocket } from './http-support.ts';

const host = '127.0.0.1';

describe('http listener: lifecycle', () => {
  it('opens refusing, accepts, and close() waits for the last WebSocket', async () => {
    const port = await freePort();
    const listener = new HttpListener({ host, port, upstream: 'builtin' });
    await listener.open(true);
    assert.equal(listener.state, 'refusing');
    assert.equal(await tryConnect(host, port), 'ECONNREFUSED');
    await listener.accept();
    const ws = await openWebSocket(`ws://${host}:${port}/ws`);
    let closedYet = false;
    const closing = listener.close().then(() => (closedYet = true));
    assert.equal(listener.close(), listener.close(), 'the same promise');
    await eventually(() => listener.state === 'closing', 'closing');
    assert.equal(await tryConnect(host, port), 'ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(closedYet, false, 'close() did not wait for the WebSocket');
    ws.close(1000);
    await closing;
    assert.equal(listener.state, 'closed');
    assert.equal(listener.stats().forced, 0);
  });

  it('destroy() ends sessions as forced; counters survive a new open', async () => {
    const port = await freePort();
    const listener = new HttpListener({ host, port, upstream: 'builtin', closeSpreadMs: 100 });
    await listener.open(false);
    const sockets = await Promise.all([1, 2, 3].map(() => openWebSocket(`ws://${host}:${port}/ws`)));
    const codes = sockets.map((ws) => closed(ws));
    assert.equal(await listener.destroy(), 3);
    for (const c of await Promise.all(codes)) assert.equal(c.code, 1012);
    assert.equal(listener.state, 'closed');
    assert.deepEqual([listener.stats().forced, listener.stats().accepted], [3, 3]);
    await listener.open(false);
    assert.equal((await fetch(`http://${host}:${port}/healthz`)).status, 200);
    assert.deepEqual([listener.stats().forced, listener.stats().accepted], [3, 4]);
    await listener.destroy();
  });

  it('a port already taken is a ListenError, and nothing is left open', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, host, () => resolve()));
    try {
      const listener = new HttpListener({ host, port, upstream: 'builtin' });
      await assert.rejects(
        listener.open(false),
        (err: unknown) => err instanceof ListenError && err.errno === 'EADDRINUSE',
      );
      assert.equal(listener.state, 'closed');
      assert.equal(listener.upstream, undefined, 'the built-in app was left running');
    } finally {
      blocker.close();
    }
  });
});
