import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReport, runChaos, shortScale } from './chaos/chaos-suite.ts';

/**
 * The chaos suite (issue 16) with small counts, inside `npm test`: the SQLite scenarios — pause/resume
 * storms under load with held sessions, a member toggled under cached DNS answers, kill -9 of agents,
 * API and DNS, CPU starvation, hostile input, disk full, read-only and wiped store. The etcd scenarios
 * (SIGSTOP of the leader and of the member an agent watches, loss of 2 of 3) and kill -9 of `ebb up` run
 * in `npm run test:chaos`. A known-open scenario (issue 16 #1–#5, fixed on another branch) reports what it
 * found and does not fail; everything else must lose nothing.
 */
describe('chaos (short)', () => {
  it('loses no held session, fails no new one, always has a member accepting, and no command lies', async () => {
    const reports = await runChaos({
      scale: shortScale,
      only: [
        'pause-storm',
        'dns-toggle',
        'kill-agent',
        'kill-api',
        'kill-dns',
        'cpu-starvation',
        'hostile-input',
        'disk-full',
        'store-readonly',
        'store-wiped',
      ],
      log: (line) => console.log(line),
    });
    assert.equal(reports.length, 10, reports.map(formatReport).join('\n'));
    const lost = reports.filter((r) => r.verdict === 'fail' || r.verdict === 'error');
    assert.deepEqual(
      lost.map((r) => r.name),
      [],
      lost.map(formatReport).join('\n'),
    );
  });
});
