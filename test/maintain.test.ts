import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet, tcpService } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

const portBase = await freePortRange(10);

/** SPEC §7/§9: `ebb maintain` walks a 4-member pool under load with no failed and no forced session. */
describe('rolling maintenance', () => {
  const ws = new Workspace();
  const base = portBase;
  let config: string;
  let ebb: EbbServer;
  const run = (...args: string[]) => runEbb(['--config', config, ...args], { timeoutMs: 120_000 });

  before(async () => {
    config = ws.config('pool.yaml', {
      pool: { name: `mt${base}`, fqdn: `mt${base}.ebb.test`, dnsTtl: 1 },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 5}` },
      api: { listen: `127.0.0.1:${base + 6}` },
      agent: { localState: `${ws.dir}/local` },
      members: loopbackMembers(4, loopbackNet(), () => [tcpService('echo', base)]),
    });
    ebb = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await ebb?.stop('SIGKILL');
    ws.cleanup();
  });

  it('drains, runs the command, resumes each member in turn: 0 failed, 0 forced', async () => {
    const load = run('load', '--rate', '30', '--duration', '10s', '--hold', '300ms', '--json');
    const log = ws.file('ran.txt', '');
    const maintain = await run(
      'maintain',
      '--exec',
      `echo "$EBB_MEMBER" >> ${log}; sleep 0.3`,
      '--drain-timeout',
      '30s',
    );
    assert.equal(maintain.code, 0, maintain.stderr);
    const { readFileSync } = await import('node:fs');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['m1', 'm2', 'm3', 'm4']);
    const stats = JSON.parse((await load).stdout) as { failed: number; accepted: number; started: number };
    assert.equal(stats.failed, 0);
    assert.equal(stats.accepted, stats.started);
    const status = JSON.parse((await run('status', '--json')).stdout) as PoolStatus;
    for (const member of status.members) {
      assert.equal(member.services[0]!.state, 'running');
      assert.equal(member.services[0]!.forced, 0);
    }
  });

  it('a failing command stops the walk and leaves that member paused', async () => {
    const result = await run('maintain', '--members', 'm2,m3', '--exec', 'test "$EBB_MEMBER" != m2');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /m2: the command exited 1; m2 stays paused/);
    const status = JSON.parse((await run('status', '--json')).stdout) as PoolStatus;
    assert.equal(status.members[1]!.services[0]!.state, 'paused');
    assert.equal(status.members[2]!.services[0]!.state, 'running', 'm3 was not touched');
  });

  it('--dry-run says the order and what each drain would leave accepting, and changes nothing', async () => {
    await run('resume', 'm2');
    const audits = (await run('audit', '--json', '--limit', '1000')).stdout;
    const dry = await run('maintain', '--exec', 'false', '--max-unavailable', '2', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^would maintain 4 member\(s\), 2 at a time: m1\+m2 → m3\+m4\n/);
    assert.match(dry.stdout, /\nwould drain m1\/echo: 4 → 3 accepting \(min 1\)\n/);
    assert.equal((await run('audit', '--json', '--limit', '1000')).stdout, audits, 'nothing was done');
  });

  it('an unfinished run is not silently restarted with another command (audit #37)', async () => {
    const first = await run('maintain', '--members', 'm3,m4', '--exec', 'test "$EBB_MEMBER" != m4');
    assert.equal(first.code, 1, first.stderr);
    const other = await run('maintain', '--members', 'm3,m4', '--exec', 'true');
    assert.equal(other.code, 2, other.stderr);
    assert.match(
      other.stderr,
      /an unfinished earlier run with --exec "test \\"\$EBB_MEMBER\\" != m4" already did m3 .*--restart to start over/,
    );
    const restarted = await run('maintain', '--members', 'm3,m4', '--exec', 'true', '--restart');
    assert.equal(restarted.code, 0, restarted.stderr);
    const status = JSON.parse((await run('status', '--json')).stdout) as PoolStatus;
    for (const member of status.members) assert.equal(member.services[0]!.state, 'running', member.id);
  });
});
