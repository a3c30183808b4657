import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LoadStats } from '../src/client/index.ts';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

const portBase = await freePortRange(4);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `ebb load` for an http service (SPEC §4.4, §10) as a user runs it: WebSockets (held, sending messages
 * whose echoes are checked) and HTTP requests over keep-alive connections, through the client connector
 * and the pool DNS of `ebb up`, while each of three members is paused and resumed under it. Nothing
 * fails, some sessions are re-tried (clients holding a DNS answer meet a refused connect), and the
 * sessions a paused member had all finish there: it drains without one forced close.
 */
describe('ebb load for an http service through pause and resume', () => {
  const ws = new Workspace('ebb-http-load-');
  const base = portBase;
  const members = loopbackMembers(3, loopbackNet(), () => [
    { id: 'web', listeners: [{ protocol: 'http', port: base, upstream: 'builtin:web' }] },
  ]);
  const apiUrl = `http://127.0.0.1:${base + 1}`;
  let config: string;
  let server: EbbServer;
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args], { timeoutMs: 60_000 });
  const web = async (member: string): Promise<ServiceStatusView> => {
    const pool = (await (await fetch(`${apiUrl}/v1/pool`)).json()) as PoolStatus;
    return pool.members.find((m) => m.id === member)!.services.find((s) => s.id === 'web')!;
  };

  before(async () => {
    config = ws.config('pool.yaml', {
      pool: { name: `hl${base}`, fqdn: `hl${base}.ebb.test`, dnsTtl: 1 },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 2}` },
      api: { listen: `127.0.0.1:${base + 1}` },
      agent: { localState: `${ws.dir}/local` },
      members,
    });
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await server?.stop('SIGKILL');
    ws.cleanup();
  });

  it('reports 0 failed and some re-tried; a paused member drains its sessions with none forced', async (t) => {
    const load = ebb(
      'load',
      '--service',
      'web',
      '--kind',
      'both',
      '--rate',
      '20',
      '--duration',
      '14s',
      '--hold',
      '1500ms',
      '--messages',
      '4',
      '--path',
      '/delay?ms=100',
      '--json',
    );
    await sleep(1500); // sessions on every member before the first pause

    const heldAtPause: number[] = [];
    for (const member of members) {
      const pause = await ebb('pause', member.id, '--service', 'web', '--reason', 'http load test');
      assert.equal(pause.code, 0, pause.stderr);
      heldAtPause.push((await web(member.id)).sessionsByKind['websockets'] ?? 0);
      let status = await web(member.id);
      for (let i = 0; i < 120 && !status.drained; i++) {
        await sleep(50);
        status = await web(member.id);
      }
      assert.equal(status.state, 'paused');
      assert.ok(status.drained, `${member.id} drained while paused: ${JSON.stringify(status)}`);
      assert.equal(status.forced, 0, `${member.id}: its sessions finished, none was cut`);
      const resume = await ebb('resume', member.id, '--service', 'web');
      assert.equal(resume.code, 0, resume.stderr);
      await sleep(1000);
    }
    assert.ok(
      heldAtPause.some((n) => n > 0),
      `some member held WebSockets when it was paused (${heldAtPause.join(', ')})`,
    );

    const result = await load;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const stats = JSON.parse(result.stdout) as LoadStats;
    t.diagnostic(`load: ${JSON.stringify(stats)}; WebSockets held at each pause: ${heldAtPause.join(', ')}`);
    assert.equal(stats.failed, 0, JSON.stringify(stats.failures));
    assert.equal(stats.dropped, 0);
    assert.ok(stats.started >= 250, `started ${stats.started}`);
    assert.equal(stats.accepted, stats.started);
    assert.equal(stats.completed, stats.started);
    assert.ok(stats.retried > 0, `some sessions met a paused member first (retried ${stats.retried})`);
    for (const member of members) {
      const status = await web(member.id);
      assert.equal(status.forced, 0, `${member.id} forced nothing`);
      assert.ok(status.accepted > 0, `${member.id} took sessions`);
    }
  });
});
