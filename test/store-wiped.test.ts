import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { renderStatus } from '../src/cli/status-commands.ts';
import { validateConfig } from '../src/config/index.ts';
import { PoolRunner } from '../src/runner/index.ts';
import { freePort } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';

/**
 * A store deleted under a paused pool (issue 16, fault 4): `state.db` removed, `ebb up` started again. The
 * agent's local copy names the store its intents came from; the new store has another identity, so the
 * pause is kept, said loudly, and left to an operator.
 */
describe('a wiped store does not resume a paused service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-wiped-'));
  const net = 100 + Math.floor(Math.random() * 100);
  const address = (i: number) => `127.0.${net}.${i}`;
  const dbPath = join(dir, 'state.db');
  let runner: PoolRunner | null = null;
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });

  const start = async (port: number) => {
    const config = validateConfig({
      pool: { name: 'wiped', fqdn: 'wiped.ebb.test', minAccepting: 1 },
      store: `sqlite:${dbPath}`,
      agent: { leaseTtl: '2s', localState: join(dir, 'local') },
      members: [1, 2].map((i) => ({
        id: `m${i}`,
        address: address(i),
        services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port, upstream: 'builtin:echo' }] }],
      })),
    });
    runner = new PoolRunner({ config, logger, api: false, dns: false });
    await runner.start();
    return runner;
  };
  const stop = async () => {
    await runner?.stop();
    runner = null;
  };
  const service = (r: PoolRunner, member: string) =>
    r.state.snapshot().members.find((m) => m.id === member)!.services[0]!;

  after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the pause, says so in the log and in status, and an operator adopts or resumes it', async () => {
    const port = await freePort();
    let r = await start(port);
    const paused = await r.controller.execute({
      action: 'pause',
      member: 'm1',
      service: 'echo',
      reason: 'disk swap',
      by: 'ops',
    });
    assert.equal(paused.applied, true);
    await stop();

    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });
    lines.length = 0;
    r = await start(port);
    assert.equal(r.agents[0]!.runtime('echo')!.state, 'paused');
    assert.equal(await tryConnect(address(1), port), 'ECONNREFUSED', 'the paused member still refuses');
    assert.equal(await tryConnect(address(2), port), 'connected');
    assert.ok(
      await r.state.waitFor(
        () => service(r, 'm1').kept === true && service(r, 'm1').intent === 'paused',
        5000,
      ),
      'the new store holds the kept pause',
    );
    assert.match(
      service(r, 'm1').reason,
      /kept paused by its agent: store [0-9a-f-]{36} was replaced.*disk swap/,
    );
    const logged = lines.map((l) => JSON.parse(l) as { code?: string; level: number; msg: string });
    const replaced = logged.find((l) => l.code === 'EBB_STORE_REPLACED');
    assert.ok(replaced, 'logged');
    assert.equal(replaced.level, 50, 'at error level');
    assert.match(replaced.msg, /keeping echo \(paused\).*ebb resume m1 --service ID/);
    assert.match(
      renderStatus(r.state.snapshot()),
      /warning: m1\/echo is paused only because its agent kept it .*ebb resume m1 --service echo.*ebb pause m1 --service echo to adopt it/,
    );
    // The capacity guard sees the kept pause: m2 is the last member accepting.
    await assert.rejects(
      r.controller.execute({ action: 'pause', member: 'm2', service: 'echo', by: 'ops' }),
      { code: 'EBB_GUARD_REFUSED' },
    );

    // Adopt: pausing again makes it the new store's own pause.
    const adopted = await r.controller.execute({ action: 'pause', member: 'm1', service: 'echo', by: 'ops' });
    assert.deepEqual(
      adopted.changed.map((c) => [c.from, c.to]),
      [['paused', 'paused']],
    );
    assert.equal(adopted.applied, true);
    assert.equal(service(r, 'm1').kept, false);

    // Restarted on the same (new) store: the copy belongs to it now; paused, nothing kept.
    await stop();
    lines.length = 0;
    r = await start(port);
    assert.equal(r.agents[0]!.runtime('echo')!.state, 'paused');
    assert.equal(service(r, 'm1').kept, false);
    assert.equal(
      lines.some((l) => l.includes('EBB_STORE_REPLACED')),
      false,
    );
    const resumed = await r.controller.execute({
      action: 'resume',
      member: 'm1',
      service: 'echo',
      by: 'ops',
    });
    assert.equal(resumed.applied, true);
    assert.equal(await tryConnect(address(1), port), 'connected');
  });
});
