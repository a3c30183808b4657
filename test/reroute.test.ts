import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet, tcpService } from './harness/pool-config.ts';
import { tryConnect } from './harness/tcp-sessions.ts';
import { freePortRange } from './harness/ports.ts';

const portBase = await freePortRange(10);

const exec = promisify(execFile);

/**
 * Re-routing as a user meets it (SPEC §4): real `dig` against the pool DNS of `ebb up`, `ebb load`
 * through the client connector while members are paused and resumed, and the readiness endpoint.
 */
describe('re-routing: pool DNS, ebb load, readiness', () => {
  const ws = new Workspace();
  const base = portBase;
  const fqdn = `rr${base}.ebb.test`;
  const dnsPort = base + 5;
  const apiUrl = `http://127.0.0.1:${base + 6}`;
  const members = loopbackMembers(3, loopbackNet(), () => [
    tcpService('echo', base),
    tcpService('chat', base + 1),
  ]);
  let config: string;
  let ebb: EbbServer;
  const run = (...args: string[]) => runEbb(['--config', config, ...args], { timeoutMs: 60_000 });
  const dig = async (...args: string[]) =>
    (await exec('dig', [`@127.0.0.1`, '-p', String(dnsPort), '+time=2', '+tries=1', ...args])).stdout;
  const short = async (...args: string[]) =>
    (await dig('+short', ...args)).trim().split('\n').filter(Boolean);

  before(async () => {
    config = ws.config('pool.yaml', {
      pool: { name: `rr${base}`, fqdn, dnsTtl: 1 },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${dnsPort}` },
      api: { listen: `127.0.0.1:${base + 6}` },
      agent: { localState: `${ws.dir}/local` },
      members,
    });
    ebb = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await ebb?.stop('SIGKILL');
    ws.cleanup();
  });

  it('dig: the pool name returns every member, authoritatively, in varying order', async () => {
    const full = await dig(fqdn, 'A');
    assert.match(full, /flags: qr aa/);
    assert.match(full, /status: NOERROR/);
    const orders = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const answer = await short(fqdn, 'A');
      assert.deepEqual([...answer].sort(), members.map((m) => m.address).sort());
      orders.add(answer.join(','));
    }
    assert.ok(orders.size > 1, `12 answers came in ${orders.size} order(s)`);
  });

  it('dig: service names, SRV with listener ports, member hosts, SOA; NXDOMAIN, NODATA, REFUSED; TCP', async () => {
    assert.equal((await short(`chat.${fqdn}`, 'A')).length, 3);
    const srv = await short(`_chat._tcp.${fqdn}`, 'SRV');
    assert.equal(srv.length, 3);
    for (const record of srv)
      assert.match(record, new RegExp(`^\\d+ \\d+ ${base + 1} m\\d\\.${fqdn.replace(/\./g, '\\.')}\\.$`));
    assert.deepEqual(await short(`m2.${fqdn}`, 'A'), [members[1]!.address]);
    assert.equal((await short(fqdn, 'SOA')).length, 1);
    assert.match(await dig(`nobody.${fqdn}`, 'A'), /status: NXDOMAIN/);
    const nodata = await dig(`m1.${fqdn}`, 'AAAA');
    assert.match(nodata, /status: NOERROR/);
    assert.match(nodata, /ANSWER: 0/);
    assert.match(nodata, /AUTHORITY SECTION:[\s\S]*SOA/);
    assert.match(await dig('example.com', 'A'), /status: REFUSED/);
    assert.equal((await short('+tcp', fqdn, 'A')).length, 3);
  });

  it('a paused member leaves DNS once pause returns, refuses connects, /ready says 503; ebb load fails nothing', async () => {
    const load = run(
      'load',
      '--service',
      'echo',
      '--rate',
      '40',
      '--duration',
      '8s',
      '--hold',
      '500ms',
      '--json',
    );
    await new Promise((r) => setTimeout(r, 1000));
    for (const member of members) {
      const pause = await run('pause', member.id, '--service', 'echo');
      assert.equal(pause.code, 0, pause.stderr);
      const answer = await short(`echo.${fqdn}`, 'A');
      assert.ok(!answer.includes(member.address), `${member.id} is out of DNS right after pause returned`);
      assert.ok(!(await short(`_echo._tcp.${fqdn}`, 'SRV')).some((r) => r.includes(`${member.id}.`)));
      assert.equal(await tryConnect(member.address, base), 'ECONNREFUSED');
      const ready = await fetch(`${apiUrl}/ready/${member.id}/echo`);
      assert.equal(ready.status, 503);
      assert.equal((await fetch(`${apiUrl}/ready/${member.id}/chat`)).status, 200);
      assert.deepEqual(await short(`${member.id}.${fqdn}`, 'A'), [member.address], 'its host record stays');
      await new Promise((r) => setTimeout(r, 700));
      assert.equal((await run('resume', member.id, '--service', 'echo')).code, 0);
      await new Promise((r) => setTimeout(r, 700));
    }
    const result = await load;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const stats = JSON.parse(result.stdout) as {
      started: number;
      accepted: number;
      failed: number;
      completed: number;
    };
    assert.equal(stats.failed, 0);
    assert.ok(stats.started >= 300, `started ${stats.started}`);
    assert.equal(stats.accepted, stats.started);
    assert.equal(stats.completed, stats.started);
  });
});
