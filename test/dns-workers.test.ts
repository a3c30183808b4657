import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet, tcpService } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

const exec = promisify(execFile);

/**
 * `dns: { workers: 2 }` through `ebb up` (issue 12): two threads answer on one port. Real `dig`, a new
 * source port each time, so the kernel spreads the queries over both: every answer has the accepting
 * members, a paused member is in none of them once `pause` returns, and it is back after `resume`.
 */
describe('pool DNS on two worker threads', () => {
  const ws = new Workspace('ebb-dns-workers-');
  const net = loopbackNet();
  let base: number;
  let fqdn: string;
  let config: string;
  let server: EbbServer;
  const members = () => loopbackMembers(3, net, () => [tcpService('echo', base)]);
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const short = async (...args: string[]) =>
    (
      await exec('dig', ['@127.0.0.1', '-p', String(base + 2), '+time=2', '+tries=1', '+short', ...args])
    ).stdout
      .trim()
      .split('\n')
      .filter(Boolean);

  before(async () => {
    base = await freePortRange(4);
    fqdn = `dw${base}.ebb.test`;
    config = ws.config('pool.yaml', {
      pool: { name: `dw${base}`, fqdn, dnsTtl: 1 },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 2}`, workers: 2 },
      api: { listen: `127.0.0.1:${base + 1}` },
      agent: { localState: `${ws.dir}/local` },
      members: members(),
    });
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await server?.stop();
    ws.cleanup();
  });

  it('answers from both threads; a pause and a resume show in every answer', async () => {
    const all = members()
      .map((m) => m.address)
      .sort();
    for (let i = 0; i < 10; i++) assert.deepEqual((await short(`echo.${fqdn}`, 'A')).sort(), all);
    assert.equal((await short('+tcp', `echo.${fqdn}`, 'A')).length, 3, 'over TCP too');

    const pause = await ebb('pause', 'm1', '--service', 'echo');
    assert.equal(pause.code, 0, pause.stderr);
    for (let i = 0; i < 20; i++) {
      const answer = await short(`echo.${fqdn}`, 'A');
      assert.deepEqual(answer.sort(), all.slice(1), `answer ${i} after the pause returned`);
    }
    const resume = await ebb('resume', 'm1', '--service', 'echo');
    assert.equal(resume.code, 0, resume.stderr);
    for (let i = 0; i < 10; i++) assert.deepEqual((await short(`echo.${fqdn}`, 'A')).sort(), all);
  });
});
