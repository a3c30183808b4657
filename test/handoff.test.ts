import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'node:net';
import type { LoadStats } from '../src/client/index.ts';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet, tcpService } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { closeSocket, openSocket, roundTrip, tryConnect } from './harness/tcp-sessions.ts';

const portBase = await freePortRange(10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Brand-new connections straight at one member's address, one after another with no retry (SPEC §13:
 * replacing Ebb refuses none): each connects, gets its line echoed and closes. Bounded in count and time.
 */
class ConnectLoop {
  ok = 0;
  readonly failures: string[] = [];
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(host: string, port: number) {
    this.#done = this.#run(host, port);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  async #run(host: string, port: number): Promise<void> {
    const giveUpAt = Date.now() + 120_000;
    for (let i = 0; i < 50_000 && !this.#stopped && Date.now() < giveUpAt; i++) {
      try {
        const socket = await openSocket(host, port);
        const echoed = await roundTrip(socket, `n${i}\n`);
        if (echoed !== `n${i}\n`) throw new Error(`echoed ${JSON.stringify(echoed)}`);
        await closeSocket(socket);
        this.ok++;
      } catch (err) {
        this.failures.push(`#${i}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
  }
}

/** A process that the test did not start itself (a successor started by SIGHUP): ended by its PID. */
async function endByPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(50);
  }
}

/** Status is written coalesced (docs/store.md): the count a reader sees follows within moments. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 100 && !done(value); i++) {
    await sleep(50);
    value = await read();
  }
  return value;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SPEC §13 hand-off through the real CLI: a second `ebb up` for the same pool replaces the running one,
 * and SIGHUP makes a running one replace itself. Sessions held across it go on, brand-new connections
 * are never refused, paused services stay paused, and the old process exits once its sessions end.
 */
describe('replacing a running ebb up (hand-off)', () => {
  const ws = new Workspace('ebb-handoff-');
  const net = loopbackNet();
  // `echo` holds the sessions counted; brand-new connections go to `probe`, so counts stay exact.
  const members = loopbackMembers(2, net, () => [
    tcpService('echo', portBase),
    tcpService('probe', portBase + 3),
  ]);
  const apiUrl = `http://127.0.0.1:${portBase + 1}`;
  let config: string;
  const servers: EbbServer[] = [];
  const strays: number[] = [];
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args], { timeoutMs: 60_000 });
  const echo = async (member: string): Promise<ServiceStatusView> => {
    const pool = (await (await fetch(`${apiUrl}/v1/pool`)).json()) as PoolStatus;
    return pool.members.find((m) => m.id === member)!.services.find((s) => s.id === 'echo')!;
  };
  const start = async () => {
    const server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    servers.push(server);
    return server;
  };

  // A process handing over turns net.ipv4.tcp_migrate_req on (src/net/migrate-requests.ts); the test
  // leaves the machine as it found it.
  const migrateReq = '/proc/sys/net/ipv4/tcp_migrate_req';
  let migrateReqBefore: string | null = null;

  before(async () => {
    try {
      migrateReqBefore = readFileSync(migrateReq, 'utf8');
    } catch {
      migrateReqBefore = null;
    }
    config = ws.config('pool.yaml', {
      pool: { name: `ho${portBase}`, fqdn: `ho${portBase}.ebb.test`, minAccepting: 1, dnsTtl: 1 },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${portBase + 2}` },
      api: { listen: `127.0.0.1:${portBase + 1}` },
      agent: { localState: `${ws.dir}/local` },
      members,
    });
  });

  after(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    for (const pid of strays) await endByPid(pid);
    ws.cleanup();
    if (migrateReqBefore !== null) {
      try {
        writeFileSync(migrateReq, migrateReqBefore);
      } catch {
        // not ours to change here either
      }
    }
  });

  it('30 echo sessions go on across a hand-off, no new connection is refused, the old process exits after them', async () => {
    const old = await start();
    const m1 = members[0]!;
    const pause = await ebb(
      'pause',
      'm2',
      '--service',
      'echo',
      '--reason',
      'stays paused across the hand-off',
    );
    assert.equal(pause.code, 0, pause.stderr);
    const held: Socket[] = [];
    for (let i = 0; i < 30; i++) held.push(await openSocket(m1.address, portBase));
    for (const [i, s] of held.entries()) assert.equal(await roundTrip(s, `before ${i}\n`), `before ${i}\n`);
    const loop = new ConnectLoop(m1.address, portBase + 3);
    await sleep(300);

    const successor = await start();
    await old.waitForOutput(new RegExp(`pid ${successor.pid} took over`), 5000);
    // Until the old process has exited, status counts its sessions under the same service.
    const during = await echo('m1');
    assert.equal(during.sessions, 30, JSON.stringify(during));
    assert.equal(during.state, 'running');
    await sleep(500); // the loop's connections now all reach the successor
    for (const [i, s] of held.entries()) assert.equal(await roundTrip(s, `after ${i}\n`), `after ${i}\n`);
    assert.equal(old.running, true, 'the old process serves its sessions until they end');

    for (const s of held.splice(0, 20)) await closeSocket(s);
    const ten = await eventually(
      () => echo('m1'),
      (s) => s.sessions === 10,
    );
    assert.equal(ten.sessions, 10, 'the old process reports its sessions as they end');
    assert.equal(old.running, true);
    for (const s of held.splice(0)) await closeSocket(s);
    assert.equal(await old.waitForExit(10_000), 0, old.output);
    // The line counts every service of the process: the 30 echo sessions, and the probe loop's one
    // connection if it was open at the yield (the loop holds at most one at a time).
    assert.match(old.output, /handed over to pid \d+: 3[01] session\(s\) ended by themselves, 0 forced/);

    await loop.stop();
    assert.deepEqual(
      loop.failures,
      [],
      `brand-new connections during the hand-off: ${loop.ok} ok, failed: ${loop.failures.slice(0, 5).join(', ')}`,
    );
    assert.ok(loop.ok > 20, `the loop ran through the hand-off (${loop.ok} connections)`);

    const m1Status = await eventually(
      () => echo('m1'),
      (s) => s.sessions === 0,
    );
    assert.equal(m1Status.sessions, 0);
    assert.equal(m1Status.forced, 0);
    const m2Status = await echo('m2');
    assert.equal(m2Status.state, 'paused', 'a paused service is still paused after the hand-off');
    assert.equal(await tryConnect(members[1]!.address, portBase), 'ECONNREFUSED');
    // As the old process's own line: the probe loop's one connection if it was open at the yield.
    await successor.waitForOutput(
      /agent\.handoff\s+m1\s+phase=finished fromPid=\d+ toPid=\d+ ended=3[01] forced=0/,
      5000,
    );
    const pool = (await (await fetch(`${apiUrl}/v1/pool`)).json()) as PoolStatus;
    assert.equal(pool.members.find((m) => m.id === 'm1')!.agent, 'up');
    assert.ok(successor.running);
  });

  it('SIGHUP: a fresh process takes the listeners over; the paused service is still paused', async () => {
    const running = servers.at(-1)!;
    const m1 = members[0]!;
    const session = await openSocket(m1.address, portBase);
    assert.equal(await roundTrip(session, 'held\n'), 'held\n');
    running.signal('SIGHUP');
    const started = await running.waitForOutput(/started pid (\d+) to take over/, 10_000);
    const fresh = Number(started[1]);
    strays.push(fresh);
    await running.waitForOutput(new RegExp(`pid ${fresh} took over`), 20_000);
    assert.equal(await roundTrip(session, 'still\n'), 'still\n', 'the held session goes on');
    assert.equal(running.running, true, 'the replaced process waits for its session');
    await closeSocket(session);
    // Its output pipes stay open in the fresh process, which inherited them: watch the process itself.
    await eventually(
      async () => running.running,
      (r) => !r,
    );
    assert.equal(running.child.exitCode, 0, running.output);
    assert.match(
      running.output,
      new RegExp(`handed over to pid ${fresh}: 1 session\\(s\\) ended by themselves, 0 forced`),
    );
    assert.ok(alive(fresh), 'the fresh process runs');

    assert.equal(await tryConnect(m1.address, portBase), 'connected', 'the fresh process holds the listener');
    const pool = (await (await fetch(`${apiUrl}/v1/pool`)).json()) as PoolStatus;
    assert.equal(pool.members.find((m) => m.id === 'm1')!.agent, 'up');
    assert.equal((await echo('m2')).state, 'paused');
    assert.equal(await tryConnect(members[1]!.address, portBase), 'ECONNREFUSED');
    const resume = await ebb('resume', 'm2', '--service', 'echo');
    assert.equal(resume.code, 0, resume.stderr);
    assert.equal(
      await tryConnect(members[1]!.address, portBase),
      'connected',
      'the fresh process applies intents',
    );
    await endByPid(fresh);
  });

  it('--handoff-timeout: what the old process still serves then is ended, counted as forced', async () => {
    const running = await start();
    const m1 = members[0]!;
    const session = await openSocket(m1.address, portBase);
    assert.equal(await roundTrip(session, 'held\n'), 'held\n');
    const closedByOld = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const successor = await EbbServer.start(['up', config, '--handoff-timeout', '1s'], /is up/, {
      cwd: ws.dir,
    });
    servers.push(successor);
    await closedByOld;
    assert.equal(await running.waitForExit(10_000), 0, running.output);
    assert.match(running.output, /0 session\(s\) ended by themselves, 1 forced/);
    await successor.waitForOutput(/agent\.handoff\s+m1\s+phase=finished .*ended=0 forced=1/, 5000);
    const status = await eventually(
      () => echo('m1'),
      (s) => s.forced === 1,
    );
    assert.equal(status.forced, 1, 'status counts the forced session under the service');
    await successor.stop();
  });

  it('a chain: the middle process exits once its own sessions end; the first re-attaches to the newest', async () => {
    const first = await start();
    const m1 = members[0]!;
    const session = await openSocket(m1.address, portBase);
    assert.equal(await roundTrip(session, 'one\n'), 'one\n');
    const middle = await start();
    await first.waitForOutput(new RegExp(`pid ${middle.pid} took over`), 5000);
    const newest = await start();
    // The middle process served nothing itself: it goes, though the first one's session lives on.
    assert.equal(await middle.waitForExit(10_000), 0, middle.output);
    await newest.waitForOutput(
      new RegExp(`agent\\.handoff\\s+m1\\s+phase=re-attached fromPid=${first.pid}`),
      10_000,
    );
    assert.equal(first.running, true);
    const counted = await eventually(
      () => echo('m1'),
      (s) => s.sessions === 1,
    );
    assert.equal(counted.sessions, 1, 'the newest process counts the first one’s session');
    assert.equal(await roundTrip(session, 'two\n'), 'two\n');
    await closeSocket(session);
    assert.equal(await first.waitForExit(10_000), 0, first.output);
    assert.match(first.output, /1 session\(s\) ended by themselves, 0 forced/);
    await newest.waitForOutput(
      new RegExp(`agent\\.handoff\\s+m1\\s+phase=finished fromPid=${first.pid} .*ended=1 forced=0`),
      5000,
    );
    assert.equal(
      (
        await eventually(
          () => echo('m1'),
          (s) => s.sessions === 0,
        )
      ).sessions,
      0,
    );
    await newest.stop();
  });

  it('20 hand-offs in a row under ebb load: 0 failed, 0 forced, no member ever looks down', async (t) => {
    let current = await start();
    // What a reader of the pool sees all along: every member's agent up (its key never lapses).
    const seenDown: string[] = [];
    let watching = true;
    const watcher = (async () => {
      for (let i = 0; i < 2000 && watching; i++) {
        try {
          const pool = (await (await fetch(`${apiUrl}/v1/pool`)).json()) as PoolStatus;
          for (const m of pool.members) if (m.agent !== 'up') seenDown.push(`${m.id}: ${m.agent}`);
        } catch (err) {
          seenDown.push(`API: ${(err as Error).message}`);
        }
        await sleep(50);
      }
    })();
    const load = ebb(
      'load',
      '--service',
      'echo',
      '--rate',
      '20',
      '--duration',
      '40s',
      '--hold',
      '300ms',
      '--json',
    );
    await sleep(1000);
    for (let i = 0; i < 20; i++) {
      const previous = current;
      current = await start();
      await previous.waitForExit(15_000);
      assert.match(previous.output, /0 forced; exiting/, previous.output);
    }
    const result = await load;
    watching = false;
    await watcher;
    assert.deepEqual(seenDown, [], 'the API answered throughout and no member looked down');
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const stats = JSON.parse(result.stdout) as LoadStats;
    t.diagnostic(`load across 20 hand-offs: ${JSON.stringify(stats)}`);
    assert.equal(stats.failed, 0, JSON.stringify(stats.failures));
    assert.equal(stats.dropped, 0);
    assert.equal(stats.completed, stats.started);
    assert.ok(stats.started >= 300, `started ${stats.started}`);
    for (const member of members)
      assert.equal((await echo(member.id)).forced, 0, `${member.id} forced nothing`);
  });
});
