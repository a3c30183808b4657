import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PoolStatus } from '../control/index.ts';
import { dryRunPlan, dryRunText } from './dry-run.ts';

type ServiceView = PoolStatus['members'][number]['services'][number];

function pool(accepting: Record<string, boolean>, agents: Record<string, 'up' | 'down'> = {}): PoolStatus {
  const service = (id: string, on: boolean, sessions = 0) =>
    ({ id, state: on ? 'running' : 'paused', accepting: on, minAccepting: 1, sessions }) as ServiceView;
  return {
    pool: { name: 'p', fqdn: 'p.ebb.test', minAccepting: 1 },
    members: Object.entries(accepting).map(([id, on]) => ({
      id,
      address: '127.0.0.1',
      agent: agents[id] ?? 'up',
      readyForOffline: false,
      services: [service('echo', on, 2), service('web', true)],
    })),
  };
}

describe('--dry-run: what the capacity guard would leave accepting', () => {
  it('says what each service would leave, and changes nothing', () => {
    const lines = dryRunPlan(pool({ m1: true, m2: true, m3: true }), 'm1', undefined, false);
    assert.deepEqual(dryRunText('pause', 'm1', lines), [
      'would pause m1/echo: 3 → 2 accepting (min 1), 2 session(s) to drain',
      'would pause m1/web: 3 → 2 accepting (min 1)',
    ]);
    assert.ok(lines.every((l) => !l.refused));
  });

  it('the last accepting member would be refused; a member whose agent is down does not count; --force', () => {
    const last = pool({ m1: true, m2: false, m3: true }, { m3: 'down' });
    const [echo] = dryRunPlan(last, 'm1', 'echo', false);
    assert.equal(echo!.acceptingNow, 1);
    assert.equal(echo!.refused, true);
    assert.match(
      dryRunText('stop', 'm1', [echo!])[0]!,
      /1 → 0 accepting \(min 1\), 2 session\(s\) to end now \(forced\): refused/,
    );
    assert.match(dryRunText('stop', 'm1', [echo!], true)[0]!, /2 session\(s\) to drain: refused/);
    assert.equal(dryRunPlan(last, 'm1', 'echo', true)[0]!.refused, false);
    // Pausing a service that already refuses leaves the count as it is: never refused.
    assert.equal(dryRunPlan(last, 'm2', 'echo', false)[0]!.refused, false);
  });

  it('an unknown member or service is exit 2', () => {
    assert.throws(() => dryRunPlan(pool({ m1: true }), 'm9', undefined, false), /member "m9" does not exist/);
    assert.throws(() => dryRunPlan(pool({ m1: true }), 'm1', 'nope', false), /service "nope" on member "m1"/);
  });
});
