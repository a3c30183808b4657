import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus } from '../src/control/index.ts';
import { ebbBin, ebbNodeFlags, Workspace } from './harness/ebb-process.ts';
import {
  nodeBin,
  nodeFlags,
  root,
  runProcess,
  which,
  type ManagedProcess,
} from './harness/managed-process.ts';
import { NetnsLab } from './harness/netns.ts';
import { poolYaml } from './harness/pool-config.ts';
import { SocketHelper } from './harness/socket-helper.ts';

/**
 * SPEC §12, `mode: kernel`, end to end: `ebb up` inside a network namespace of the test's own, plain
 * echo servers (not Ebb's) on the members' addresses, and clients that hold connections. Ebb is never
 * in the data path: it refuses with an nftables rule and counts in the socket table. The root
 * namespace's ruleset is compared before and after.
 */
const runnable = process.getuid?.() === 0 && which('nft') && which('ss') && which('ip');

describe('kernel data path (mode: kernel) in a network namespace', { skip: !runnable }, () => {
  const ws = new Workspace('ebb-kernel-');
  let lab: NetnsLab;
  let ns: string;
  let rootRuleset: string;
  let servers: SocketHelper;
  let clients: SocketHelper;
  /** The Ebb processes of pool a now: one `ebb up`, or `ebb agent` per member and `ebb api`. */
  let ebb: ManagedProcess[] = [];
  const stopEbb = async (signal: NodeJS.Signals) => {
    for (const p of ebb) await p.stop(signal);
    ebb = [];
  };
  const pools = {
    a: { name: '', config: '', api: 'http://127.0.0.1:7070' },
    b: { name: '', config: '', api: 'http://127.0.0.1:7080' },
  };
  const fe01 = '127.0.0.11';
  const fe02 = '127.0.0.12';
  const other = '127.0.0.13';
  const port = 7000;

  const inNs = (command: string, args: string[], env: Record<string, string> = {}) =>
    runProcess('ip', ['netns', 'exec', ns, command, ...args], { env, timeoutMs: 30_000 });
  const cli = async (pool: 'a' | 'b', ...args: string[]) => {
    const r = await inNs(nodeBin, [...ebbNodeFlags, ebbBin, '--config', pools[pool].config, ...args], {
      EBB_API: pools[pool].api,
    });
    return r;
  };
  const status = async (pool: 'a' | 'b' = 'a') => {
    const r = await cli(pool, 'status', '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as PoolStatus;
  };
  const db = (s: PoolStatus, member: string) =>
    s.members.find((m) => m.id === member)!.services.find((x) => x.id === 'db')!;
  /** Polls status until `check` holds: bounded in time, never a fixed sleep. */
  const waitFor = async (what: string, check: (s: PoolStatus) => boolean, pool: 'a' | 'b' = 'a') => {
    const deadline = Date.now() + 15_000;
    let last: PoolStatus | undefined;
    while (Date.now() < deadline) {
      last = await status(pool).catch(() => undefined);
      if (last && check(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(
      `${what}: not reached; last ${JSON.stringify(last)}\n${ebb.map((p) => p.output.slice(-1500)).join('\n')}`,
    );
  };
  /** The rule keys of a pool's chain for a member in the namespace (`nft -j`), [] when absent. */
  const rules = async (pool: 'a' | 'b', member: string) => {
    const table = `ebb_${pools[pool].name.replaceAll('-', '_')}`;
    const r = await inNs('nft', ['-j', 'list', 'chain', 'inet', table, `m_${member}`]);
    if (r.code !== 0) return [];
    const doc = JSON.parse(r.stdout) as { nftables: Array<{ rule?: { comment?: string } }> };
    return doc.nftables.flatMap((i) => (i.rule?.comment ? [i.rule.comment] : []));
  };
  const startEbb = async (pool: 'a' | 'b', env: Record<string, string> = {}) => {
    const proc = lab.start(
      1,
      `ebb up ${pool}`,
      nodeBin,
      [...ebbNodeFlags, ebbBin, 'up', pools[pool].config],
      {
        cwd: ws.dir,
        env,
      },
    );
    await proc.waitForOutput(/is up/, 20_000);
    return proc;
  };
  const startSplit = async (pool: 'a' | 'b') => {
    const args = [...ebbNodeFlags, ebbBin, '--config', pools[pool].config];
    const procs = [
      ...['fe01', 'fe02'].map((m) =>
        lab.start(1, `ebb agent ${m}`, nodeBin, [...args, 'agent', '--member', m], { cwd: ws.dir }),
      ),
      lab.start(1, 'ebb api', nodeBin, [...args, 'api'], { cwd: ws.dir }),
    ];
    await Promise.all([
      procs[0]!.waitForOutput(/ebb agent fe01: running/, 20_000),
      procs[1]!.waitForOutput(/ebb agent fe02: running/, 20_000),
      procs[2]!.waitForOutput(/ebb api: http/, 20_000),
    ]);
    return procs;
  };
  const tryNew = async (host: string) => (await clients.request({ op: 'try', host, port })).result;

  before(async () => {
    rootRuleset = (await runProcess('nft', ['list', 'ruleset'])).stdout;
    lab = NetnsLab.create(1);
    ns = lab.hosts[0]!.ns;
    const helper = join(root, 'test/harness/socket-helper.ts');
    servers = await SocketHelper.start(
      lab.start(1, 'servers', nodeBin, [...nodeFlags, helper], { stdin: true }),
    );
    clients = await SocketHelper.start(
      lab.start(1, 'clients', nodeBin, [...nodeFlags, helper], { stdin: true }),
    );
    for (const host of [fe01, fe02, other]) await servers.request({ op: 'serve', host, port });
    const kernel = { protocol: 'tcp', mode: 'kernel', port } as const;
    for (const [key, p] of Object.entries(pools) as Array<['a' | 'b', (typeof pools)['a']]>) {
      p.name = `k${lab.id}-${key}`;
      const listen = p.api.slice('http://'.length);
      p.config = ws.file(
        `${key}.yaml`,
        poolYaml({
          pool: { name: p.name, fqdn: `${p.name}.ebb.test`, minAccepting: 0 },
          store: `sqlite:${ws.dir}/${key}.db`,
          dns: { listen: key === 'a' ? '127.0.0.1:5354' : '127.0.0.1:5355' },
          api: { listen },
          agent: { leaseTtl: '2s', localState: `${ws.dir}/${key}-local` },
          members:
            key === 'a'
              ? [
                  { id: 'fe01', address: fe01, services: [{ id: 'db', listeners: [kernel] }] },
                  { id: 'fe02', address: fe02, services: [{ id: 'db', listeners: [kernel] }] },
                ]
              : [{ id: 'fe01', address: other, services: [{ id: 'db', listeners: [kernel] }] }],
        }),
      );
    }
  });

  after(async () => {
    await stopEbb('SIGKILL');
    lab?.destroy();
    ws.cleanup();
    const now = (await runProcess('nft', ['list', 'ruleset'])).stdout;
    assert.equal(now, rootRuleset, "the root namespace's ruleset is unchanged");
  });

  it('refuses to start without CAP_NET_ADMIN or without nft, naming the listener and what is missing', async () => {
    const noCap = await inNs('setpriv', [
      '--bounding-set=-net_admin',
      '--inh-caps=-net_admin',
      nodeBin,
      ...ebbNodeFlags,
      ebbBin,
      'up',
      pools.a.config,
    ]);
    assert.equal(noCap.code, 1, noCap.stderr + noCap.stdout);
    assert.match(noCap.stderr, /fe01\/db tcp 127\.0\.0\.11:7000 \(mode kernel\): needs CAP_NET_ADMIN/);
    const noNft = await inNs(nodeBin, [...ebbNodeFlags, ebbBin, 'up', pools.a.config], {
      PATH: '/usr/bin:/bin',
    });
    assert.equal(noNft.code, 1, noNft.stderr + noNft.stdout);
    assert.match(noNft.stderr, /fe01\/db tcp 127\.0\.0\.11:7000 \(mode kernel\): needs nft/);
    const agent = await inNs(
      nodeBin,
      [...ebbNodeFlags, ebbBin, '--config', pools.a.config, 'agent', '--member', 'fe02'],
      {
        PATH: '/usr/bin:/bin',
      },
    );
    assert.equal(agent.code, 1, agent.stderr + agent.stdout);
    assert.match(agent.stderr, /fe02\/db tcp 127\.0\.0\.12:7000 \(mode kernel\): needs nft/);
    assert.deepEqual(await rules('a', 'fe01'), []);
  });

  it('running: no rule, the server takes connections directly, sessions counted from the kernel', async () => {
    ebb = [await startEbb('a')];
    await clients.request({ op: 'open', group: 'held', host: fe01, port, count: 20 });
    const s = await waitFor('20 sessions on fe01', (x) => db(x, 'fe01').sessions === 20);
    assert.equal(db(s, 'fe01').state, 'running');
    assert.deepEqual(await rules('a', 'fe01'), []);
  });

  it('pause: 20 held connections carry on, a new one is reset at once, the other member accepts', async () => {
    const pause = await cli('a', 'pause', 'fe01', '--service', 'db');
    assert.equal(pause.code, 0, pause.stderr + pause.stdout);
    assert.equal(await tryNew(fe01), 'ECONNREFUSED', 'a SYN is answered with a reset');
    // The reset came from Ebb's rule (its counter), not from a server gone away: fe01 still listens.
    assert.equal(await tryNew(fe02), 'connected');
    assert.equal((await clients.request({ op: 'echo', group: 'held' })).answered, 20);
    assert.deepEqual(await rules('a', 'fe01'), [`ebb db ${fe01} ${port}`]);
    const s = await status();
    assert.equal(db(s, 'fe01').state, 'paused');
    assert.equal(db(s, 'fe01').sessions, 20);
    assert.equal(db(s, 'fe01').drained, false);
    await waitFor('the reset counted as refused', (x) => db(x, 'fe01').refused >= 1);
  });

  it('kill -9 of Ebb while paused: the connections live on and the member still refuses', async () => {
    await stopEbb('SIGKILL');
    assert.equal((await clients.request({ op: 'echo', group: 'held' })).answered, 20);
    assert.equal(await tryNew(fe01), 'ECONNREFUSED');
    assert.deepEqual(await rules('a', 'fe01'), [`ebb db ${fe01} ${port}`]);
  });

  it('restarted, Ebb shows the service paused with its 20 sessions; closing some, a deadline forces the rest', async () => {
    // Restarted as on separate machines this time: `ebb agent` per member and `ebb api`.
    ebb = await startSplit('a');
    const s = await waitFor(
      'fe01/db paused with 20',
      (x) => db(x, 'fe01').state === 'paused' && db(x, 'fe01').sessions === 20,
    );
    assert.equal(db(s, 'fe01').accepting, false);
    assert.deepEqual(await rules('a', 'fe01'), [`ebb db ${fe01} ${port}`], 'the rule stayed throughout');
    assert.equal(await tryNew(fe01), 'ECONNREFUSED');
    await clients.request({ op: 'close', group: 'held', count: 15 });
    await waitFor('5 left', (x) => db(x, 'fe01').sessions === 5);
    const deadline = await cli('a', 'pause', 'fe01', '--service', 'db', '--deadline', '1s');
    assert.equal(deadline.code, 0, deadline.stderr + deadline.stdout);
    const forced = await waitFor('drained after the deadline', (x) => db(x, 'fe01').drained);
    assert.equal(db(forced, 'fe01').forced, 5);
    assert.equal((await clients.request({ op: 'count', group: 'held' })).open, 0, 'the client saw them end');
  });

  it('closing the last connection of a paused member is seen as drained', async () => {
    await clients.request({ op: 'open', group: 'fe02', host: fe02, port, count: 3 });
    await waitFor('3 on fe02', (x) => db(x, 'fe02').sessions === 3);
    assert.equal((await cli('a', 'pause', 'fe02', '--service', 'db')).code, 0);
    await clients.request({ op: 'close', group: 'fe02' });
    const s = await waitFor('fe02 drained', (x) => db(x, 'fe02').drained);
    assert.equal(db(s, 'fe02').forced, 0);
  });

  it('two pools on one machine never touch each other’s rules', async () => {
    const b = await startEbb('b');
    try {
      assert.equal((await cli('b', 'pause', 'fe01', '--service', 'db')).code, 0);
      assert.deepEqual(await rules('b', 'fe01'), [`ebb db ${other} ${port}`]);
      assert.deepEqual(await rules('a', 'fe01'), [`ebb db ${fe01} ${port}`]);
      assert.equal((await cli('a', 'resume', 'fe02', '--service', 'db')).code, 0);
      assert.deepEqual(await rules('b', 'fe01'), [`ebb db ${other} ${port}`], 'pool a wrote only its own');
      assert.equal((await cli('b', 'resume', 'fe01', '--service', 'db')).code, 0);
      assert.deepEqual(await rules('b', 'fe01'), []);
      assert.deepEqual(await rules('a', 'fe01'), [`ebb db ${fe01} ${port}`]);
    } finally {
      await b.stop('SIGTERM');
    }
  });

  it('stop refuses and ends the connections (forced); start accepts again with no rule', async () => {
    await clients.request({ op: 'open', group: 'stop', host: fe02, port, count: 2 });
    await waitFor('2 on fe02', (x) => db(x, 'fe02').sessions === 2);
    const stop = await cli('a', 'stop', 'fe02', '--service', 'db');
    assert.equal(stop.code, 0, stop.stderr + stop.stdout);
    const s = await waitFor('fe02 stopped', (x) => db(x, 'fe02').state === 'stopped');
    assert.equal(db(s, 'fe02').sessions, 0);
    assert.deepEqual(await rules('a', 'fe02'), [`ebb db ${fe02} ${port}`]);
    assert.equal(await tryNew(fe02), 'ECONNREFUSED');
    assert.equal((await clients.request({ op: 'count', group: 'stop' })).open, 0);
    assert.equal((await cli('a', 'start', 'fe02', '--service', 'db')).code, 0);
    await waitFor('fe02 running', (x) => db(x, 'fe02').state === 'running');
    assert.deepEqual(await rules('a', 'fe02'), []);
    assert.equal(await tryNew(fe02), 'connected');
  });

  it('resume: accepting again and no rule left; stopping Ebb with every service running leaves none', async () => {
    const resume = await cli('a', 'resume', 'fe01', '--service', 'db');
    assert.equal(resume.code, 0, resume.stderr + resume.stdout);
    assert.equal(await tryNew(fe01), 'connected');
    assert.deepEqual(await rules('a', 'fe01'), []);
    await stopEbb('SIGTERM');
    assert.deepEqual(await rules('a', 'fe01'), []);
    assert.deepEqual(await rules('a', 'fe02'), []);
    assert.equal(await tryNew(fe01), 'connected');
  });

  it('a rule removed behind its back is put back; while it cannot be, status shows the error', async () => {
    // Ebb's nft is a wrapper that refuses transactions (nft -f) while a flag file exists.
    const flag = join(ws.dir, 'block-nft');
    const bin = join(ws.dir, 'bin');
    const real = (await runProcess('sh', ['-c', 'command -v nft'])).stdout.trim();
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'nft'),
      `#!/bin/sh\nif [ "$1" = "-f" ] && [ -e '${flag}' ]; then echo 'Error: blocked by the test' >&2; exit 1; fi\nexec '${real}' "$@"\n`,
    );
    chmodSync(join(bin, 'nft'), 0o755);
    ebb = [await startEbb('a', { PATH: `${bin}:${process.env.PATH ?? ''}` })];
    assert.equal((await cli('a', 'pause', 'fe01', '--service', 'db')).code, 0);
    const table = `ebb_${pools.a.name.replaceAll('-', '_')}`;
    const removeChain = async () => {
      const chain = `inet ${table} m_fe01`;
      const r = await inNs('nft', [`flush chain ${chain}; delete chain ${chain}`]);
      assert.equal(r.code, 0, r.stderr);
    };
    await removeChain();
    const deadline = Date.now() + 10_000;
    while ((await rules('a', 'fe01')).length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(await rules('a', 'fe01'), [`ebb db ${fe01} ${port}`], 'put back by the agent');
    writeFileSync(flag, '');
    await removeChain();
    const broken = await waitFor('the error in status', (x) => db(x, 'fe01').error !== null);
    assert.match(
      db(broken, 'fe01').error!,
      /holds \[\] but the intents ask \[127\.0\.0\.11 7000\]; rewriting it failed/,
    );
    assert.equal(
      await tryNew(fe01),
      'connected',
      'the kernel accepts while the rule is missing: hence the error',
    );
    rmSync(flag);
    await waitFor('the error gone', (x) => db(x, 'fe01').error === null);
    assert.deepEqual(await rules('a', 'fe01'), [`ebb db ${fe01} ${port}`]);
    assert.equal(await tryNew(fe01), 'ECONNREFUSED');
    assert.equal((await cli('a', 'resume', 'fe01', '--service', 'db')).code, 0);
    await stopEbb('SIGTERM');
    assert.deepEqual(await rules('a', 'fe01'), []);
  });
});
