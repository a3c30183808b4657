import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { openSocket } from './harness/tcp-sessions.ts';

/**
 * `ebb status` and friends against real processes (operator audit #19, #35, #38, #44, --dry-run): two
 * members with an agent process each, and the API in its own process.
 */
describe('status, dry runs and signals an operator can read', () => {
  const ws = new Workspace();
  let pool: TestPool;
  let config: string;
  const agents = new Map<string, EbbServer>();
  let api: EbbServer;
  const sockets: Socket[] = [];
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const status = async () => JSON.parse((await ebb('status', '--json')).stdout) as PoolStatus;
  const until = async (check: (s: PoolStatus) => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    let last: PoolStatus | undefined;
    while (Date.now() < deadline) {
      last = await status();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${what}: not reached; last ${JSON.stringify(last)}`);
  };
  const service = (s: PoolStatus, member: string) => s.members.find((m) => m.id === member)!.services[0]!;
  const startAgent = async (member: string) =>
    agents.set(
      member,
      await EbbServer.start(['agent', '--config', config, '--member', member], /running/, { cwd: ws.dir }),
    );

  before(async () => {
    pool = testPool({
      members: 2,
      portBase: await freePortRange(32),
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'conferencing-announcement' }],
    });
    config = ws.file('pool.yaml', pool.yaml);
    for (const m of pool.members) await startAgent(m.id);
    api = await EbbServer.start(['api', '--config', config], /ebb api:/, { cwd: ws.dir });
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    for (const server of [...agents.values(), api]) await server?.stop('SIGKILL');
    ws.cleanup();
  });

  it('--dry-run says what the guard would leave, and changes nothing', async () => {
    const dry = await ebb('pause', 'm1', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, 'would pause m1/conferencing-announcement: 2 → 1 accepting (min 1)\n');
    assert.equal(service(await status(), 'm1').intent, 'running', 'nothing changed');
    assert.equal((await ebb('pause', 'm1', '--reason', 'patch KB123')).code, 0);
    const refused = await ebb('drain', 'm2', '--dry-run', '--json');
    assert.equal(refused.code, 4);
    const plan = JSON.parse(refused.stdout) as {
      services: Array<{ refused: boolean; acceptingAfter: number }>;
    };
    assert.deepEqual(
      plan.services.map((s) => [s.refused, s.acceptingAfter]),
      [[true, 0]],
    );
  });

  it('status in 80 columns: who paused, why and since; --member keeps one member', async () => {
    const text = await ebb('status');
    assert.equal(text.code, 0, text.stderr);
    const table = text.stdout.split('\n\n')[0]!;
    for (const line of table.split('\n')) assert.ok(line.length <= 80, `${line.length}: ${line}`);
    assert.match(text.stdout, /^ {2}conferencing-announcement +paused \(drained\) +0 +0 +\d+(ms|s)$/m);
    assert.match(
      text.stdout,
      /^m1\/conferencing-announcement: paused by local since \d{4}-.* UTC, reason: patch KB123$/m,
    );
    const one = await ebb('status', '--member', 'm2');
    assert.match(one.stdout, /^m2 /m);
    assert.doesNotMatch(one.stdout, /^m1 /m);
    const unknown = await ebb('status', '--member', 'm9');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--member: "m9" is not a member of pool test\d+ \(m1, m2\)/);
  });

  it("an agent prints its own member's events only (audit #35)", async () => {
    await agents.get('m1')!.waitForOutput(/service\.paused +m1\/conferencing-announcement/);
    assert.doesNotMatch(agents.get('m2')!.output, /m1\/conferencing-announcement/);
  });

  it('status --watch in a pipe prints the pool, then again when it changes; Ctrl-C ends it', async () => {
    const watch = new EbbServer(['--config', config, 'status', '--watch', '200ms'], { cwd: ws.dir });
    try {
      await watch.waitForOutput(/m1\/conferencing-announcement: paused by local/);
      assert.equal((await ebb('resume', 'm1')).code, 0);
      await watch.waitForOutput(
        /\n\npool test\d+[\s\S]*m1 .*\n {2}SERVICE.*\n {2}conferencing-announcement +running/,
      );
      watch.signal('SIGINT');
      assert.equal(await watch.waitForExit(5000), 0);
    } finally {
      await watch.stop('SIGKILL');
    }
  });

  it('Ctrl-C during a drain says the member stays paused (audit #38)', async () => {
    const m = pool.members.find((x) => x.id === 'm1')!;
    sockets.push(await openSocket(m.address, m.ports['conferencing-announcement']!));
    await until((s) => service(s, 'm1').sessions === 1, 'm1 has a session');
    const drain = new EbbServer(['--config', config, 'drain', 'm1'], { cwd: ws.dir });
    try {
      await drain.waitForOutput(/m1: 1 session\(s\) left/);
      drain.signal('SIGINT');
      assert.equal(await drain.waitForExit(5000), 130);
      assert.match(
        drain.output,
        /interrupted: m1 stays paused and goes on draining \(`ebb resume m1` takes it back\)/,
      );
    } finally {
      await drain.stop('SIGKILL');
    }
    assert.equal(service(await status(), 'm1').intent, 'paused');
  });

  it('an agent stopped with a live session says it ends it, counted as forced (audit #44)', async () => {
    const agent = agents.get('m1')!;
    await agent.stop('SIGTERM');
    assert.match(
      agent.output,
      /ebb: SIGTERM: stopping; ending 1 live session\(s\) now, not drained, counted as forced \(m1\/conferencing-announcement: 1\); `ebb drain m1` first ends none/,
    );
  });

  it('with the agent down, a command not yet applied shows as pending (audit #19)', async () => {
    await until((s) => s.members[0]!.agent === 'down', 'm1 agent down');
    assert.equal((await ebb('resume', 'm1')).code, 0);
    const text = await ebb('status', '--member', 'm1');
    assert.match(text.stdout, /^m1 +127\.\S+ +agent down/m);
    assert.match(text.stdout, /^ {2}conferencing-announcement +(stopped|paused) → running \(pending\) /m);
  });
});
