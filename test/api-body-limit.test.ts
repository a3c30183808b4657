import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { postHugeBody } from './harness/huge-body.ts';
import { poolYaml, testPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { rssMb } from './harness/process-memory.ts';

/**
 * Issue 16 #6: the API read a body whole before checking its size — ten concurrent 10 MB bodies pushed
 * `ebb up` from 123 to 411 MB. Reading now stops at 16 KB with a 413 and the connection closes.
 */
describe('API bodies over the limit are refused at the limit', () => {
  const ws = new Workspace('ebb-body-limit-');
  let server: EbbServer;
  let apiPort: number;

  before(async () => {
    const portBase = await freePortRange(32);
    const pool = testPool({
      portBase,
      members: 2,
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'alpha' }],
    });
    apiPort = portBase + 31;
    server = await EbbServer.start(['up', ws.file('pool.yaml', poolYaml(pool.config))], /is up/, {
      cwd: ws.dir,
    });
  });
  after(async () => {
    await server?.stop();
    ws.cleanup();
  });

  it('a 1 MB body sent whole (operator audit #34): 413, not 400', async () => {
    for (let i = 0; i < 5; i++) {
      const result = await postHugeBody('127.0.0.1', apiPort, '/v1/members/m1/pause', 1024 * 1024, {
        oneWrite: true,
      });
      assert.equal(result.status, 413);
    }
  });

  for (const chunked of [false, true]) {
    it(`10 concurrent 10 MB bodies (${chunked ? 'chunked' : 'with Content-Length'}): 413, and RSS does not grow`, async () => {
      const before = rssMb(server.pid);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(server.pid))), 10);
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          postHugeBody('127.0.0.1', apiPort, '/v1/members/m1/pause', 10 * 1024 * 1024, { chunked }),
        ),
      ).finally(() => clearInterval(sampler));
      const after = rssMb(server.pid);
      console.log(`rss ${before} MB before, ${peak} MB peak, ${after} MB after (chunked: ${chunked})`);
      assert.ok(peak - before < 25, `RSS grew from ${before} to ${peak} MB`);
      // 413, or a reset: the API closes while the sender is still writing, and the sender's failed write
      // can come before it reads the 413 (the API does not linger reading: docs/reliability.md).
      for (const r of results) assert.ok(r.status === 413 || r.status === 0, `answered ${r.status}`);
      // The kernel's socket buffers take a few MB before the server closes; never the whole 10 MB.
      for (const r of results) assert.ok(r.sent < 10 * 1024 * 1024, `sent ${r.sent} bytes`);
      const health = await fetch(`http://127.0.0.1:${apiPort}/healthz`);
      assert.equal(health.status, 200);
    });
  }
});
