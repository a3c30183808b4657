import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../src/config/index.ts';
import { Controller } from '../src/control/index.ts';
import { PoolRunner } from '../src/runner/index.ts';
import { EtcdCluster } from './harness/etcd-cluster.ts';
import { freePort } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';

/**
 * SPEC §2 with the etcd member that carries an agent's watch frozen (SIGSTOP; issue 16, fault 1): the
 * pause must still return only once the paused member refuses. Two runners share the cluster as an
 * `ebb agent` and an `ebb api` process would, each with its own client and watch stream.
 */
describe('pause while the etcd member serving the agent’s watch is frozen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-frozen-'));
  const net = 100 + Math.floor(Math.random() * 100);
  const address = (i: number) => `127.0.${net}.${i}`;
  let cluster: EtcdCluster;
  let agents: PoolRunner;
  let control: PoolRunner;
  let port: number;

  before(async () => {
    cluster = await EtcdCluster.start();
    port = await freePort();
    const config = validateConfig({
      pool: { name: `frozen${port}`, fqdn: `frozen${port}.ebb.test`, minAccepting: 1 },
      store: cluster.spec,
      // Longer than the member stays frozen (until the pause returns, at most 10 s): the frozen member may
      // be the leader, and etcd 3.4.23 revokes leases itself when a leader paused longer than their TTL
      // resumes (docs/store.md) — the agents would look down, which is not what this test is about.
      agent: { leaseTtl: '15s', localState: join(dir, 'local') },
      members: [1, 2].map((i) => ({
        id: `m${i}`,
        address: address(i),
        services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port, upstream: 'builtin:echo' }] }],
      })),
    });
    const logger = pino({ level: 'silent' });
    agents = new PoolRunner({ config, logger, agents: 'all', api: false, dns: false });
    await agents.start();
    control = new PoolRunner({ config, logger, agents: [], api: false, dns: false });
    await control.start();
    const up = () =>
      control.state.snapshot().members.every((m) => m.agent === 'up' && m.services.every((s) => s.accepting));
    assert.ok(await control.state.waitFor(up, 15_000), 'pool up');
  });

  after(async () => {
    await control?.stop();
    await agents?.stop();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns applied, and the listener refuses the moment it returns', async () => {
    // The agents' client opens its watch stream on its first endpoint; so does the API side's.
    const serving = await servingMember(cluster, () => true);
    cluster.freeze(serving);
    try {
      const started = Date.now();
      const result = await control.controller.execute({
        action: 'pause',
        member: 'm1',
        service: 'echo',
        by: 'ops',
      });
      assert.deepEqual(result.failures, []);
      assert.equal(result.applied, true, 'confirmed by the agent');
      assert.equal(await tryConnect(address(1), port), 'ECONNREFUSED');
      // The watchdog gives a silent stream up after 1.5–2 s; the controller waits 10 s at most.
      assert.ok(Date.now() - started < 10_000);
    } finally {
      cluster.thaw(serving);
    }
    await cluster.waitHealthy();
    const resumed = await control.controller.execute({
      action: 'resume',
      member: 'm1',
      service: 'echo',
      by: 'ops',
    });
    assert.equal(resumed.applied, true);
    assert.equal(await tryConnect(address(1), port), 'connected');
  });

  it('an agent that is up but does not confirm in time is a failure, never a quiet success', async () => {
    const impatient = new Controller(control.state, control.store, { ackTimeoutMs: 1 });
    const result = await impatient.execute({
      action: 'pause',
      member: 'm2',
      service: 'echo',
      by: 'ops',
      force: true, // this test is about the answer, not the guard
    });
    assert.equal(result.applied, false);
    assert.deepEqual(
      result.failures.map((f) => [f.service, f.code]),
      [['echo', 'EBB_NOT_CONFIRMED']],
    );
    assert.match(result.failures[0]!.message, /did not confirm paused within .*may still be accepting/);
    await control.controller.execute({ action: 'resume', member: 'm2', service: 'echo', by: 'ops' });
  });
});

/** The etcd member with the most watches: where both runners' watch streams are. */
async function servingMember(cluster: EtcdCluster, ready: () => boolean): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const counts = await Promise.all(
      Array.from({ length: cluster.size }, (_, i) => cluster.watchers(i).catch(() => 0)),
    );
    const most = Math.max(...counts);
    if (most > 0 && ready()) return counts.indexOf(most);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('no etcd member serves a watch');
}
