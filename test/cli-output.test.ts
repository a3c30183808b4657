import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord, PoolStatus } from '../src/control/index.ts';
import { defaultIntent } from '../src/core/index.ts';
import { PoolKeys, SqliteStore } from '../src/store/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { closeSocket, closedByPeer, openSocket } from './harness/tcp-sessions.ts';

/**
 * What the `ebb` command says, as an operator reads it (operator audit 1: #3, #8, #9, #10, #11, #12, #13,
 * #14, #15, #23, `config check`, `version`). A pool of three members with one agent process each and
 * the API in its own process, so the API can go away in the middle of a drain while the agents go on.
 */
describe('CLI output an operator can trust', () => {
  const ws = new Workspace();
  let pool: TestPool;
  let config: string;
  const agents: EbbServer[] = [];
  let api: EbbServer;
  const sockets: Socket[] = [];
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const status = async () => JSON.parse((await ebb('status', '--json')).stdout) as PoolStatus;
  const audit = async () => JSON.parse((await ebb('audit', '--json')).stdout) as AuditRecord[];
  const until = async <T>(read: () => Promise<T>, check: (value: T) => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    let last: T | undefined;
    while (Date.now() < deadline) {
      last = await read();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${what}: not reached; last ${JSON.stringify(last)}`);
  };
  const sessionsOf = (s: PoolStatus, member: string, service: string) =>
    s.members.find((m) => m.id === member)!.services.find((x) => x.id === service)!.sessions;
  const open = async (member: string, service: string) => {
    const m = pool.members.find((x) => x.id === member)!;
    const socket = await openSocket(m.address, m.ports[service]!);
    sockets.push(socket);
    await until(status, (s) => sessionsOf(s, member, service) >= 1, `${member}/${service} has a session`);
    return socket;
  };
  const startApi = () => EbbServer.start(['api', '--config', config], /ebb api:/, { cwd: ws.dir });

  before(async () => {
    pool = testPool({
      portBase: await freePortRange(32),
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'echo' }, { id: 'park' }],
    });
    config = ws.file('pool.yaml', pool.yaml);
    for (const m of pool.members) {
      agents.push(
        await EbbServer.start(['agent', '--config', config, '--member', m.id], /running/, { cwd: ws.dir }),
      );
    }
    api = await startApi();
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    for (const server of [...agents, api]) await server?.stop('SIGKILL');
    ws.cleanup();
  });

  it('ebb version is ebb --version; config check validates without starting (exit 2 naming the field)', async () => {
    const version = await ebb('version');
    assert.equal(version.code, 0);
    assert.equal(version.stdout, (await runEbb(['--version'])).stdout);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);

    const ok = await runEbb(['config', 'check', config]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /: ok: pool test\d+ \(test\d+\.ebb\.test\): 3 members, 6 services, 6 listeners;/);
    assert.equal(ok.stdout.split('\n').length, 2, 'one line');

    const bad = ws.file('bad.yaml', pool.yaml.replace(/port: (\d+)/, 'port: 70000'));
    const refused = await runEbb(['config', 'check', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /bad\.yaml: members\[0\]\.services\[0\]\.listeners\[0\]\.port: /);
  });

  it('an unknown --member and a bad EBB_LOG_LEVEL are usage errors, not stack traces (#11, #12)', async () => {
    const unknown = await ebb('agent', '--member', 'zz');
    assert.equal(unknown.code, 2);
    assert.equal(
      unknown.stderr,
      `ebb: --member: "zz" is not a member of pool ${pool.config.pool.name} (m1, m2, m3)\n`,
    );
    // An API (harmless beside the running one) rather than a second agent for m1, were the check to fail.
    const level = await runEbb(['--config', config, 'api', '--listen', '127.0.0.1:0'], {
      env: { EBB_LOG_LEVEL: 'bogus' },
      timeoutMs: 10_000,
    });
    assert.equal(level.code, 2);
    assert.match(level.stderr, /^ebb: EBB_LOG_LEVEL: "bogus" is not a log level \(fatal, error, warn, info/);
    assert.doesNotMatch(level.stderr, /\n\s+at /);
  });

  it('stop --deadline without --graceful is a usage error; a hard stop says what it ended, and it is audited (#3, #8)', async () => {
    const refused = await ebb('stop', 'm1', '--service', 'park', '--deadline', '5m');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--deadline: only makes sense with --graceful/);
    assert.equal((await status()).members[0]!.services[1]!.state, 'running', 'nothing changed');

    const held = await open('m1', 'park');
    const stop = await ebb('stop', 'm1', '--service', 'park', '--reason', 'hard');
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /m1\/park: running → stopped \(1 session\(s\) ended \(forced\)\)/);
    await closedByPeer(held);
    const records = await until(
      audit,
      (r) => r.some((x) => x.action === ('force' as AuditRecord['action'])),
      'the forced session in the audit log',
    );
    const forced = records.find((x) => x.action === ('force' as AuditRecord['action']))!;
    assert.equal(forced.by, 'agent:m1');
    assert.equal(forced.member, 'm1');
    assert.equal(forced.service, 'park');
    assert.equal(forced.detail, '1 session(s) ended by a hard stop');
    assert.match(
      (await ebb('audit')).stdout,
      /agent:m1 +force +m1\/park +ok +1 session\(s\) ended by a hard stop/,
    );
    assert.equal((await ebb('start', 'm1', '--service', 'park')).code, 0);
  });

  it('startup shows the type change (#14)', async () => {
    const manual = await ebb('startup', 'm3', '--service', 'park', 'manual');
    assert.equal(manual.code, 0, manual.stderr);
    assert.match(manual.stdout, /m3\/park: startup automatic → manual/);
    const back = await ebb('startup', 'm3', '--service', 'park', 'automatic');
    assert.match(back.stdout, /m3\/park: startup manual → automatic/);
  });

  it('a graceful stop with a session left says stopping, not stopped (#15)', async () => {
    const held = await open('m2', 'park');
    const stop = await ebb('stop', 'm2', '--service', 'park', '--graceful');
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /m2\/park: running → stopping \(1 session left\)/);
    await closeSocket(held);
    await until(status, (s) => s.members[1]!.services[1]!.state === 'stopped', 'stopped at the last session');
    assert.equal((await ebb('start', 'm2', '--service', 'park')).code, 0);
  });

  it('a drain reports what it forced, not what earlier deadlines did; the deadline is audited (#8, #9)', async () => {
    const held = await open('m1', 'echo');
    const pause = await ebb(
      'pause',
      'm1',
      '--service',
      'echo',
      '--deadline',
      '300ms',
      '--wait',
      '--timeout',
      '10s',
    );
    assert.equal(pause.code, 0, pause.stderr);
    assert.match(pause.stderr, /m1: drained, 1 session\(s\) forced/);
    await closedByPeer(held);
    await until(
      audit,
      (r) => r.some((x) => x.detail === '1 session(s) ended at the deadline' && x.service === 'echo'),
      'the deadline in the audit log',
    );
    assert.equal((await ebb('resume', 'm1')).code, 0);

    const drain = await ebb('drain', 'm1', '--timeout', '10s');
    assert.equal(drain.code, 0, drain.stderr);
    assert.match(drain.stderr, /m1: ready for offline \(/);
    assert.doesNotMatch(drain.stderr, /forced/, 'this drain forced nothing');
    assert.equal((await ebb('resume', 'm1')).code, 0);
  });

  it('text with control characters from the store reaches the terminal escaped (#23)', async () => {
    const reason = 'line1\nline2\x1b[31mRED';
    // The API refuses such reasons now; a record or an intent written before that, or by another tool,
    // still holds them.
    const refused = await ebb('pause', 'm3', '--service', 'echo', '--reason', reason);
    assert.equal(refused.code, 2, refused.stderr);
    const store = new SqliteStore(`${ws.dir}/state.db`);
    const keys = new PoolKeys(pool.config.pool.name);
    try {
      const at = Date.now();
      const record = {
        id: 'old',
        at,
        by: 'ops\x1b]0;owned\x07',
        action: 'pause',
        member: 'm3',
        service: 'echo',
        reason,
        force: false,
        result: 'ok',
        detail: 'echo: running → paused',
      };
      await store.put(keys.audit(at, record.id), JSON.stringify(record));
      const intent = { ...defaultIntent('automatic'), run: 'paused', reason, by: 'ops', at };
      await store.put(keys.intent('m3', 'echo'), JSON.stringify(intent));
    } finally {
      await store.close();
    }
    const table = (await ebb('audit')).stdout;
    assert.ok(!table.includes('\x1b') && !table.includes('\x07'), 'no escape sequence reaches the terminal');
    assert.match(table, /ops\\u001b\]0;owned\\u0007 +pause +m3\/echo +ok +line1\\u000aline2\\u001b\[31mRED/);
    const shown = await until(
      () => ebb('status'),
      (r) => r.stdout.includes('m3/echo: paused by ops since '),
      'the stored pause applied',
    );
    assert.match(
      shown.stdout,
      /m3\/echo: paused by ops since .* UTC, reason: line1\\u000aline2\\u001b\[31mRED/,
    );
    assert.ok(!shown.stdout.includes('\x1b'));
    assert.equal((await ebb('resume', 'm3')).code, 0);
  });

  it('a drain survives the API going away and coming back (#10)', async () => {
    const held = await open('m2', 'echo');
    const drain = ebb('drain', 'm2', '--timeout', '40s');
    await until(status, (s) => s.members[1]!.services[0]!.state === 'paused', 'm2 paused');
    await new Promise((r) => setTimeout(r, 500)); // the drain's command has its answer: it is polling now
    await api.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    api = await startApi();
    await closeSocket(held);
    const result = await drain;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /m2: cannot reach the Ebb API .*; retrying for up to 1m/);
    assert.match(result.stderr, /m2: the API answers again/);
    assert.match(result.stderr, /m2: ready for offline/);
    assert.equal((await ebb('resume', 'm2')).code, 0);
  });
});

describe('ebb up: banner hints and log lines (#12, #13)', () => {
  const ws = new Workspace();
  let server: EbbServer | undefined;

  after(async () => {
    await server?.stop('SIGKILL');
    ws.cleanup();
  });

  it('a pool not on the default API address gets --config in every hint; pretty logs are not JSON', async () => {
    const pool = testPool({
      members: 1,
      portBase: await freePortRange(32),
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'echo' }],
    });
    const config = ws.file('side pool.yaml', pool.yaml);
    server = await EbbServer.start(['up', config, '--log-format', 'pretty'], /Ctrl-C stops the pool/, {
      cwd: ws.dir,
      env: { EBB_LOG_LEVEL: 'info' },
    });
    await server.waitForOutput(/agent\.up/);
    const quoted = `'${config}'`;
    assert.ok(server.stdout.includes(`  npx ebb --config ${quoted} status\n`), server.stdout);
    assert.ok(server.stdout.includes(`  npx ebb --config ${quoted} pause m1 --reason "patching"\n`));
    assert.ok(server.stdout.includes(`  npx ebb --config ${quoted} drain m1 `));
    assert.match(server.output, /\d\d:\d\d:\d\d\.\d{3} info {13}agent\.up {2}/, 'info log lines, pretty');
    assert.doesNotMatch(server.output, /\{"level"/, 'no JSON log lines');
  });
});
