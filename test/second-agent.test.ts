import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';

/**
 * Operator audit #1: a second agent for a member that a live process holds must not touch the pool. It
 * refuses to start, names the process that holds the member, and writes nothing: the member stays in
 * service, in DNS and accepting. (The same command again — `ebb up` beside `ebb up` — is not a second
 * agent but a replacement, a hand-off: test/handoff.test.ts.)
 */
describe('a second agent for a live member', () => {
  const ws = new Workspace('ebb-second-agent-');
  let pool: TestPool;
  let config: string;
  let server: EbbServer;

  const status = async (): Promise<PoolStatus> =>
    (await (await fetch(`${pool.apiUrl}/v1/pool`)).json()) as PoolStatus;

  before(async () => {
    pool = testPool({
      portBase: await freePortRange(32),
      members: 2,
      services: [{ id: 'alpha' }],
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
    });
    config = ws.file('pool.yaml', pool.yaml);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await server?.stop();
    ws.cleanup();
  });

  for (const args of [['agent', '--member', 'm1']]) {
    it(`ebb ${args.join(' ')} refuses to start, names the holder, and changes nothing`, async () => {
      const before = (await status()).members[0]!;
      assert.equal(before.services[0]!.accepting, true);

      const second = await runEbb([...args, '--config', config], { cwd: ws.dir, timeoutMs: 30_000 });
      assert.equal(second.code, 1, second.stdout + second.stderr);
      assert.match(second.stderr, new RegExp(`member m1 is held by another agent: pid ${server.pid}\\b`));

      const after = (await status()).members[0]!;
      assert.equal(after.agent, 'up');
      assert.equal(after.services[0]!.state, 'running');
      assert.equal(after.services[0]!.accepting, true);
      assert.equal(after.services[0]!.error, null, 'no error was written for the member');
      assert.equal(after.readyForOffline, false);
      assert.equal(await tryConnect(pool.members[0]!.address, pool.members[0]!.ports['alpha']!), 'connected');
    });
  }
});
