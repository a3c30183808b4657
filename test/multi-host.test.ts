import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ebbBin, ebbNodeFlags } from './harness/ebb-process.ts';
import { etcdBin, etcdMemberArgs } from './harness/etcd-cluster.ts';
import { nodeBin, type ManagedProcess } from './harness/managed-process.ts';
import { NetnsLab } from './harness/netns.ts';
import { poolYaml, tcpService } from './harness/pool-config.ts';

/**
 * Three "machines" in network namespaces, each with its own address, an etcd member and an Ebb agent;
 * DNS and the API run on the first. What one host does, every host sees (SPEC §6).
 */
describe('multi-host pool in network namespaces', () => {
  let lab: NetnsLab;
  const dir = mkdtempSync(join(tmpdir(), 'ebb-multihost-'));
  const token = `ops-${Math.random().toString(36).slice(2)}-multihost`;
  const processes = new Map<string, ManagedProcess>();
  let config: string;
  let fqdn: string;

  const spawnOn = (host: number, name: string, command: string, args: string[]) => {
    const proc = lab.start(host, name, command, args, { env: { EBB_T_OPS: token } });
    processes.set(name, proc);
    return proc;
  };
  const ebb = (host: number, ...args: string[]) =>
    lab.exec(host, nodeBin, [...ebbNodeFlags, ebbBin, '--config', config, ...args], {
      EBB_TOKEN: token,
      EBB_API: `http://${lab.hosts[0]!.address}:7070`,
    });
  const dig = (host: number, name: string) =>
    lab
      .exec(host, 'dig', [
        `@${lab.hosts[0]!.address}`,
        '-p',
        '5353',
        '+short',
        '+time=1',
        '+tries=1',
        name,
        'A',
      ])
      .stdout.trim()
      .split('\n')
      .filter(Boolean)
      .sort();
  const connects = (host: number, address: string) =>
    lab.exec(host, nodeBin, [
      '-e',
      `require('net').connect(7000,'${address}').on('connect',()=>process.exit(0)).on('error',()=>process.exit(3))`,
    ]).code === 0;
  const until = async (check: () => boolean, what: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (check()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail(
      `${what}: not within ${timeoutMs} ms\n${[...processes].map(([n, p]) => `--- ${n}\n${p.output.slice(-1500)}`).join('\n')}`,
    );
  };

  before(async () => {
    lab = NetnsLab.create(3);
    const ips = lab.hosts.map((h) => h.address);
    fqdn = `lab${lab.id}.ebb.test`;
    const cluster = ips.map((ip, i) => `e${i + 1}=http://${ip}:2380`).join(',');
    ips.forEach((ip, i) =>
      spawnOn(
        i + 1,
        `etcd${i + 1}`,
        etcdBin,
        etcdMemberArgs({
          name: `e${i + 1}`,
          dataDir: join(dir, `etcd${i + 1}`),
          clientUrl: `http://${ip}:2379`,
          peerUrl: `http://${ip}:2380`,
          initialCluster: cluster,
          token: `lab-${lab.id}`,
        }),
      ),
    );
    config = join(dir, 'pool.yaml');
    writeFileSync(
      config,
      poolYaml({
        pool: { name: `lab${lab.id}`, fqdn, dnsTtl: 1 },
        store: `etcd://${ips.map((ip) => `${ip}:2379`).join(',')}`,
        dns: { listen: `${ips[0]}:5353` },
        api: { listen: `${ips[0]}:7070`, tokens: [{ name: 'ops', role: 'admin', token: 'env:EBB_T_OPS' }] },
        agent: { leaseTtl: '3s', localState: `${dir}/local` }, // the least etcd allows (issue 16)
        members: ips.map((ip, i) => ({ id: `m${i + 1}`, address: ip, services: [tcpService('web', 7000)] })),
      }),
    );
    const ebbArgs = (...args: string[]) => [...ebbNodeFlags, ebbBin, '--config', config, ...args];
    for (let i = 1; i <= 3; i++) spawnOn(i, `agent${i}`, nodeBin, ebbArgs('agent', '--member', `m${i}`));
    spawnOn(1, 'dns', nodeBin, ebbArgs('dns'));
    spawnOn(1, 'api', nodeBin, ebbArgs('api'));
    await until(() => dig(3, fqdn).length === 3, 'every member in DNS, asked from host 3', 40_000);
  });

  after(() => {
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a pause on one host is seen everywhere', async () => {
    const pause = ebb(3, 'pause', 'm2', '--service', 'web', '--reason', 'from host 3');
    assert.equal(pause.code, 0, pause.stderr + pause.stdout);
    assert.equal(connects(1, lab.hosts[1]!.address), false, 'host 1 is refused by m2');
    assert.equal(connects(3, lab.hosts[0]!.address), true, 'host 3 still reaches m1');
    await until(() => !dig(1, fqdn).includes(lab.hosts[1]!.address), 'DNS on host 1 leaves m2 out');
    const status = JSON.parse(ebb(2, 'status', '--json').stdout) as {
      members: Array<{ services: Array<{ state: string }> }>;
    };
    assert.equal(status.members[1]!.services[0]!.state, 'paused');
    assert.equal(ebb(1, 'resume', 'm2').code, 0);
    await until(() => dig(2, fqdn).length === 3, 'm2 back');
  });

  it('killing an agent takes its member out; killing one etcd member changes nothing for users', async () => {
    await processes.get('agent3')!.stop('SIGKILL');
    await until(
      () => !dig(2, fqdn).includes(lab.hosts[2]!.address),
      'm3 out of DNS within its lease',
      10_000,
    );
    await processes.get('etcd2')!.stop('SIGKILL');
    assert.equal(
      ebb(2, 'pause', 'm1', '--service', 'web').code,
      0,
      'control works with one etcd member down',
    );
    assert.equal(connects(3, lab.hosts[0]!.address), false);
    const last = ebb(2, 'pause', 'm2', '--service', 'web');
    assert.equal(last.code, 4, 'm2 is the last accepting member with a live agent: the guard refuses');
    assert.equal(connects(1, lab.hosts[1]!.address), true);
    assert.equal(ebb(2, 'resume', 'm1').code, 0);
    assert.equal(connects(3, lab.hosts[0]!.address), true);
  });
});
