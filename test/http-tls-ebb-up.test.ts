import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LoadStats } from '../src/client/index.ts';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { makeCertificates, run, type TestCertificates } from './http-support.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * HTTPS and WSS through `ebb up` (SPEC §10, §11): a `web` service with `tls:` on two members, its
 * certificate from a CA the test makes with openssl, for the members' names in the pool zone. curl
 * checks it with `--cacert`; `ebb load --ca` runs HTTPS requests and WSS sessions through the pool DNS
 * while m1 is paused and resumed: 0 failed, m1 drains with nothing forced.
 */
describe('https and wss in a pool run by ebb up', () => {
  const ws = new Workspace('ebb-https-up-');
  const net = loopbackNet();
  let base: number;
  let fqdn: string;
  let config: string;
  let certs: TestCertificates;
  let server: EbbServer;
  const address = (i: number) => `127.0.${net}.${i}`;
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args], { timeoutMs: 60_000 });
  const web = async (member: string): Promise<ServiceStatusView> => {
    const pool = (await (await fetch(`http://127.0.0.1:${base + 1}/v1/pool`)).json()) as PoolStatus;
    return pool.members.find((m) => m.id === member)!.services.find((s) => s.id === 'web')!;
  };

  before(async () => {
    base = await freePortRange(4);
    fqdn = `tls${base}.ebb.test`;
    certs = await makeCertificates(ws.dir, ['web'], [`*.${fqdn}`]);
    config = ws.config('pool.yaml', {
      pool: { name: `tls${base}`, fqdn, dnsTtl: 1 },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 2}` },
      api: { listen: `127.0.0.1:${base + 1}` },
      agent: { localState: `${ws.dir}/local` },
      members: loopbackMembers(2, net, () => [
        {
          id: 'web',
          listeners: [{ protocol: 'http', port: base, upstream: 'builtin:web', tls: certs.servers['web']! }],
        },
      ]),
    });
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await server?.stop('SIGKILL');
    ws.cleanup();
  });

  it('curl --cacert reaches each member by its name in the pool zone', async () => {
    for (const [i, member] of [
      [1, 'm1'],
      [2, 'm2'],
    ] as const) {
      const name = `${member}.${fqdn}`;
      const curl = await run('curl', [
        '-sS',
        '--cacert',
        certs.ca,
        '--resolve',
        `${name}:${base}:${address(i)}`,
        `https://${name}:${base}/healthz`,
      ]);
      assert.equal(curl.code, 0, curl.stderr);
      assert.equal(JSON.parse(curl.stdout).member, member);
    }
    // Without the CA, the certificate is not trusted: the TLS is real.
    const untrusted = await run('curl', [
      '-sS',
      '--resolve',
      `m1.${fqdn}:${base}:${address(1)}`,
      `https://m1.${fqdn}:${base}/healthz`,
    ]);
    assert.notEqual(untrusted.code, 0);
  });

  it('ebb load without --ca does not trust the certificate: every session fails', async () => {
    for (const kind of ['request', 'websocket']) {
      const result = await ebb(
        'load',
        '--service',
        'web',
        '--kind',
        kind,
        '--rate',
        '10',
        '--duration',
        '1s',
        '--json',
      );
      assert.notEqual(result.code, 0, `${kind}: ${result.stdout}`);
      const stats = JSON.parse(result.stdout) as LoadStats;
      assert.ok(stats.started > 0);
      assert.equal(stats.failed, stats.started, `${kind}: ${JSON.stringify(stats)}`);
      assert.match(JSON.stringify(stats.failures), /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    }
  });

  it('ebb load --ca: HTTPS and WSS sessions through a pause and a resume, 0 failed', async (t) => {
    const load = ebb(
      'load',
      '--service',
      'web',
      '--kind',
      'both',
      '--ca',
      certs.ca,
      '--rate',
      '15',
      '--duration',
      '8s',
      '--hold',
      '1500ms',
      '--messages',
      '3',
      '--json',
    );
    // WebSockets held on m1 before it is paused, seen in its status.
    let held = 0;
    for (let i = 0; i < 100 && held === 0; i++) {
      await sleep(50);
      held = (await web('m1')).sessionsByKind['websockets'] ?? 0;
    }
    assert.ok(held > 0, 'm1 holds WSS sessions of the load');
    const pause = await ebb('pause', 'm1', '--service', 'web', '--reason', 'tls load test');
    assert.equal(pause.code, 0, pause.stderr);
    let status = await web('m1');
    for (let i = 0; i < 120 && !status.drained; i++) {
      await sleep(50);
      status = await web('m1');
    }
    assert.ok(status.drained, `m1 drained while paused: ${JSON.stringify(status)}`);
    assert.equal(status.forced, 0, 'its sessions finished; none was cut');
    await sleep(1500); // load meets a paused m1 for a while
    const resume = await ebb('resume', 'm1', '--service', 'web');
    assert.equal(resume.code, 0, resume.stderr);

    const result = await load;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const stats = JSON.parse(result.stdout) as LoadStats;
    t.diagnostic(`load: ${JSON.stringify(stats)}; WSS held on m1 at its pause: ${held}`);
    assert.equal(stats.failed, 0, JSON.stringify(stats.failures));
    assert.equal(stats.dropped, 0);
    assert.ok(stats.started >= 60, `started ${stats.started}`);
    assert.equal(stats.completed, stats.started);
    for (const member of ['m1', 'm2']) {
      const s = await web(member);
      assert.ok(s.accepted > 0, `${member} took sessions`);
      assert.equal(s.forced, 0);
    }
  });
});
