import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CachedAnswers } from './cached-answers.ts';
import { runLoad } from './load-generator.ts';
import type { Endpoint } from './pool-resolver.ts';
import { tcpSession } from './tcp-echo-session.ts';

/**
 * Issue 16 #8: with a member toggled, `ebb load` sessions failed because the connector kept trying the
 * addresses of a cached answer that all refused. When every cached address refuses, it asks DNS again
 * once before failing.
 */
describe('a stale DNS answer does not fail sessions', () => {
  let echo: Server;
  let live: Endpoint;
  let gone: Endpoint;

  before(async () => {
    echo = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    live = { host: '127.0.0.1', port: (echo.address() as AddressInfo).port };
    // A port that was just listening and is closed now refuses, like a member paused since the answer.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    gone = { host: '127.0.0.1', port: (closed.address() as AddressInfo).port };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
  });
  after(() => new Promise<void>((resolve) => echo.close(() => resolve())));

  it('re-resolves once when every cached address refuses, then connects', async () => {
    let queries = 0;
    // The first answer names only the member that has gone since; DNS now names the live one.
    const answers = new CachedAnswers(async () => (queries++ === 0 ? [gone] : [live]), 60_000);
    const stats = await runLoad({
      endpoints: (o) => answers.next(o),
      session: tcpSession(true),
      ratePerSecond: 50,
      durationMs: 200,
      holdMs: 0,
    });
    assert.equal(stats.started, 10);
    assert.deepEqual(stats.failures, {});
    assert.equal(stats.failed, 0);
    assert.equal(stats.accepted, 10);
    assert.ok(stats.retried >= 1, 'the sessions that met the stale answer count as re-tried');
    assert.ok(queries <= 3, `concurrent re-resolves share one query (${queries} queries)`);
  });

  it('fails once the fresh answer refuses too, without asking again', async () => {
    let queries = 0;
    const answers = new CachedAnswers(async () => (queries++, [gone]), 60_000);
    const stats = await runLoad({
      endpoints: (o) => answers.next(o),
      session: tcpSession(true),
      ratePerSecond: 10,
      durationMs: 100,
      holdMs: 0,
    });
    assert.equal(stats.failed, 1);
    assert.deepEqual(stats.failures, { 'no member accepted': 1 });
    assert.equal(queries, 2, 'one query, one re-resolve');
  });

  it('keeps the answer for its TTL otherwise', async () => {
    let queries = 0;
    const answers = new CachedAnswers(async () => (queries++, [live, gone]), 60_000);
    const first = await answers.next();
    const second = await answers.next();
    assert.equal(queries, 1);
    assert.deepEqual(second, [first[1], first[0]], 'the order rotates per session');
  });
});
