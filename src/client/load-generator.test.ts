import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotAcceptedError, runLoad, sleep, type LoadStats, type SessionRunner } from './load-generator.ts';

const endpoints = async () => [{ host: '127.0.0.1', port: 1 }];

describe('load generator counts', () => {
  it('counts a session as accepted once a member took it, while it is still held (audit #18)', async () => {
    const progress: LoadStats[] = [];
    const session: SessionRunner = async ({ accepted, holdMs }) => {
      accepted(false);
      await sleep(holdMs);
    };
    const stats = await runLoad({
      endpoints,
      session,
      ratePerSecond: 20,
      durationMs: 500,
      holdMs: 1500,
      onProgress: (s) => progress.push(s),
    });
    const first = progress[0]!;
    assert.equal(first.started, 10);
    assert.equal(first.accepted, 10, 'held sessions are accepted');
    assert.equal(first.active, 10);
    assert.equal(stats.accepted, 10);
    assert.equal(stats.completed, 10);
    assert.equal(stats.failed, 0);
  });

  it('never counts a failed session as accepted: not taken, DNS failing, or dropped after it was taken', async () => {
    const session: SessionRunner = async ({ n, accepted }) => {
      if (n % 4 === 0) throw new NotAcceptedError('no member accepted');
      accepted(n % 4 === 1);
      if (n % 4 === 3) throw new Error('closed by the server (1012)');
    };
    const stats = await runLoad({ endpoints, session, ratePerSecond: 200, durationMs: 40, holdMs: 0 });
    assert.equal(stats.started, 8);
    assert.equal(stats.failed, 4);
    assert.equal(stats.dropped, 2);
    assert.equal(stats.accepted, 4);
    assert.equal(stats.retried, 2);
    assert.equal(stats.completed, 4);
    assert.equal(stats.accepted + stats.failed, stats.started);
    assert.deepEqual(stats.failures, { 'no member accepted': 2, 'closed by the server (1012)': 2 });

    const noDns = await runLoad({
      endpoints: () => Promise.reject(new Error('DNS lookup failed: ECONNREFUSED')),
      session,
      ratePerSecond: 100,
      durationMs: 40,
      holdMs: 0,
    });
    assert.equal(noDns.started, 4);
    assert.equal(noDns.accepted, 0);
    assert.equal(noDns.failed, 4);
  });
});
