import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { PoolStatus } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb, type EbbRun } from './harness/ebb-process.ts';
import { EtcdCluster } from './harness/etcd-cluster.ts';
import { freePortRange } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';

const exec = promisify(execFile);
const portBase = await freePortRange(40);

/**
 * A pool as it runs across machines (SPEC §3, §5, §6, §8), here on loopback: a real 3-member etcd
 * cluster, three `ebb agent` processes, `ebb dns` and two `ebb api` processes on one config, with tokens.
 */
describe('pool on etcd: separate processes, access control, audit', () => {
  const ws = new Workspace();
  const net = 100 + Math.floor(Math.random() * 100);
  const members = [1, 2, 3].map((i) => ({ id: `m${i}`, address: `127.0.${net}.${i}` }));
  const port = portBase;
  const dnsPort = portBase + 30;
  const apis = [`http://127.0.0.1:${portBase + 31}`, `http://127.0.0.1:${portBase + 32}`];
  const fqdn = `etcd${portBase}.ebb.test`;
  const tokens = {
    EBB_T_VIEW: `view-${Math.random().toString(36).slice(2)}-token`,
    EBB_T_OPS: `ops-${Math.random().toString(36).slice(2)}-token`,
    EBB_T_ADMIN: `admin-${Math.random().toString(36).slice(2)}-token`,
  };
  let etcd: EtcdCluster;
  let config: string;
  const agents = new Map<string, EbbServer>();
  const servers: EbbServer[] = [];
  const cliOutput: string[] = [];

  const cli = async (token: string | null, ...args: string[]): Promise<EbbRun> => {
    const result = await runEbb(['--config', config, '--api', apis[0]!, ...args], {
      env: token ? { EBB_TOKEN: token } : {},
      timeoutMs: 60_000,
    });
    cliOutput.push(result.stdout, result.stderr);
    return result;
  };
  const status = async () =>
    JSON.parse((await cli(tokens.EBB_T_VIEW, 'status', '--json')).stdout) as PoolStatus;
  const dig = async (name: string) =>
    (
      await exec('dig', ['@127.0.0.1', '-p', String(dnsPort), '+short', '+time=1', '+tries=1', name, 'A'])
    ).stdout
      .trim()
      .split('\n')
      .filter(Boolean);
  const until = async (check: () => Promise<boolean>, what: string, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${what}: not within ${timeoutMs} ms`);
  };
  const startAgent = async (member: string) => {
    const agent = await EbbServer.start(
      ['agent', '--config', config, '--member', member],
      /ebb agent m\d: running/,
      {
        cwd: ws.dir,
      },
    );
    agents.set(member, agent);
    servers.push(agent);
  };
  const pauseVia = (api: string, member: string) =>
    fetch(`${api}/v1/members/${member}/pause`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.EBB_T_OPS}`, 'content-type': 'application/json' },
      body: JSON.stringify({ service: 'web', reason: 'race' }),
    });

  before(async () => {
    etcd = await EtcdCluster.start();
    config = ws.file(
      'pool.yaml',
      [
        `pool: { name: etcd${portBase}, fqdn: ${fqdn}, dnsTtl: 1 }`,
        `store: ${etcd.spec}`,
        `dns: { listen: 127.0.0.1:${dnsPort} }`,
        `api:`,
        `  listen: 127.0.0.1:${portBase + 31}`,
        `  tokens:`,
        `    - { name: watcher, role: viewer, token: env:EBB_T_VIEW }`,
        `    - { name: ops, role: operator, token: env:EBB_T_OPS }`,
        `    - { name: root, role: admin, token: env:EBB_T_ADMIN }`,
        `agent: { leaseTtl: 3s, localState: ${ws.dir}/local }`,
        'members:',
        ...members.flatMap((m) => [
          `  - id: ${m.id}`,
          `    address: ${m.address}`,
          '    services:',
          `      - id: web`,
          `        listeners: [{ protocol: tcp, port: ${port}, upstream: builtin:echo }]`,
        ]),
      ].join('\n'),
    );
    for (const m of members) await startAgent(m.id);
    servers.push(await EbbServer.start(['dns', '--config', config], /ebb dns:/, { cwd: ws.dir }));
    for (const api of apis) {
      const listen = api.replace('http://', '');
      servers.push(
        await EbbServer.start(['api', '--config', config, '--listen', listen], /ebb api:/, {
          cwd: ws.dir,
          env: tokens,
        }),
      );
    }
    await until(
      async () => (await status()).members.every((m) => m.agent === 'up' && m.services[0]!.accepting),
      'pool up',
    );
  });

  after(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    await etcd?.stop();
    ws.cleanup();
  });

  it('no token or a viewer token cannot pause (exit 5); an operator can, and the other processes follow', async () => {
    assert.equal((await cli(null, 'pause', 'm1', '--service', 'web')).code, 5);
    assert.equal((await cli(tokens.EBB_T_VIEW, 'pause', 'm1', '--service', 'web')).code, 5);
    assert.equal((await cli('not-a-real-token-at-all', 'status')).code, 5);
    const pause = await cli(tokens.EBB_T_OPS, 'pause', 'm1', '--service', 'web', '--reason', 'kernel update');
    assert.equal(pause.code, 0, pause.stderr);
    // The agent is another process: its listener refuses as soon as the command returned.
    assert.equal(await tryConnect(members[0]!.address, port), 'ECONNREFUSED');
    await until(
      async () => !(await dig(fqdn)).includes(members[0]!.address),
      'DNS (another process) leaves m1 out',
      2000,
    );
    assert.equal((await cli(tokens.EBB_T_OPS, 'stop', 'm2', '--service', 'web')).code, 5, 'stop needs admin');
    assert.equal((await cli(tokens.EBB_T_OPS, 'resume', 'm1')).code, 0);
    await until(async () => (await dig(fqdn)).includes(members[0]!.address), 'm1 back in DNS');
  });

  it('two pauses of the last two accepting members through two API processes: exactly one wins, every time', async () => {
    assert.equal((await cli(tokens.EBB_T_OPS, 'pause', 'm3', '--service', 'web')).code, 0);
    for (let round = 0; round < 8; round++) {
      const [a, b] = await Promise.all([pauseVia(apis[0]!, 'm1'), pauseVia(apis[1]!, 'm2')]);
      const codes = [a.status, b.status].sort();
      assert.deepEqual(
        codes,
        [200, 409],
        `round ${round}: ${a.status} ${await a.text()} / ${b.status} ${await b.text()}`,
      );
      const accepting = (await status()).members.filter((m) => m.services[0]!.accepting);
      assert.equal(accepting.length, 1, `round ${round}: exactly one member accepts`);
      const winner = a.status === 200 ? 'm1' : 'm2';
      assert.equal((await cli(tokens.EBB_T_OPS, 'resume', winner)).code, 0);
    }
    assert.equal((await cli(tokens.EBB_T_OPS, 'resume', 'm3')).code, 0);
  });

  it('kill -9 of an agent takes its member out of DNS within the lease and shows agent: down; restarted, it comes back', async () => {
    await agents.get('m2')!.stop('SIGKILL');
    const killedAt = Date.now();
    await until(async () => !(await dig(fqdn)).includes(members[1]!.address), 'm2 out of DNS', 10_000);
    const outAfterMs = Date.now() - killedAt;
    assert.ok(outAfterMs < 6000, `out of DNS after ${outAfterMs} ms (lease 3 s)`);
    assert.equal((await status()).members[1]!.agent, 'down');
    assert.deepEqual(await dig(`m2.${fqdn}`), [members[1]!.address], 'its host record stays');
    await startAgent('m2');
    await until(async () => (await dig(fqdn)).includes(members[1]!.address), 'm2 back in DNS');
    assert.equal((await status()).members[1]!.agent, 'up');
  });

  it('with one etcd member killed, control still works', async () => {
    const leader = await etcd.leader();
    await etcd.kill(leader);
    try {
      const pause = await cli(tokens.EBB_T_OPS, 'pause', 'm3', '--service', 'web');
      assert.equal(pause.code, 0, pause.stderr);
      assert.equal(await tryConnect(members[2]!.address, port), 'ECONNREFUSED');
      assert.equal((await cli(tokens.EBB_T_OPS, 'resume', 'm3')).code, 0);
      assert.equal(await tryConnect(members[2]!.address, port), 'connected');
    } finally {
      await etcd.restart(leader);
    }
  });

  it('a paused member whose agent restarts while etcd is down comes back paused', async () => {
    assert.equal(
      (await cli(tokens.EBB_T_OPS, 'pause', 'm1', '--service', 'web', '--reason', 'disk swap')).code,
      0,
    );
    for (let i = 0; i < etcd.size; i++) await etcd.kill(i);
    await agents.get('m1')!.stop('SIGKILL');
    await startAgent('m1');
    assert.equal(
      await tryConnect(members[0]!.address, port),
      'ECONNREFUSED',
      'm1 came back paused from its local copy',
    );
    assert.equal(await tryConnect(members[1]!.address, port), 'connected', 'm2 keeps serving without etcd');
    await etcd.restartAll();
    await until(async () => (await status()).members[0]!.agent === 'up', 'm1 reconnects by itself', 20_000);
    const m1 = (await status()).members[0]!.services[0]!;
    assert.equal(m1.state, 'paused');
    assert.equal((await cli(tokens.EBB_T_OPS, 'resume', 'm1')).code, 0);
  });

  it('ebb audit names who paused and why; no token appears in any log', async () => {
    const auditRun = await cli(tokens.EBB_T_VIEW, 'audit', '--json', '--limit', '500');
    assert.equal(auditRun.code, 0, auditRun.stdout + auditRun.stderr);
    const audit = JSON.parse(auditRun.stdout) as Array<{
      by: string;
      action: string;
      member: string;
      reason: string;
      result: string;
    }>;
    assert.ok(
      audit.some(
        (r) =>
          r.by === 'ops' &&
          r.action === 'pause' &&
          r.member === 'm1' &&
          r.reason === 'kernel update' &&
          r.result === 'ok',
      ),
    );
    assert.ok(
      audit.some((r) => r.result === 'refused'),
      'the guard refusals of the race are audited',
    );
    const table = await cli(tokens.EBB_T_VIEW, 'audit');
    assert.match(table.stdout, /ops\s+pause\s+m1\/web\s+ok\s+kernel update/);
    const logs = [...servers.map((s) => s.output), ...cliOutput].join('\n');
    for (const value of Object.values(tokens)) assert.ok(!logs.includes(value), 'a token leaked into a log');
  });
});
