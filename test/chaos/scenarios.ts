import { existsSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { PoolResolver, SipCaller } from '../../src/client/index.ts';
import { postHugeBody } from '../harness/huge-body.ts';
import { rssMb } from '../harness/process-memory.ts';
import { tryConnect } from '../harness/tcp-sessions.ts';
import { bindReadOnly, busyLoops, slowloris, udpFlood, unmount } from './chaos-probes.ts';
import type { ChaosScale, ScenarioContext } from './chaos-suite.ts';

/** The pool a scenario runs on: separate processes on SQLite or on etcd, or one `ebb up`. */
export type StoreKind = 'sqlite' | 'etcd' | 'up';

export interface Scenario {
  name: string;
  store: StoreKind;
  /** How long the steady load of new sessions runs. */
  loadMs(scale: ChaosScale): number;
  /** false: no load (the scenario restarts every process, which cuts new sessions too: issue 16 #9). */
  load?: false;
  held?: false;
  /** false: no availability samples (the scenario stops every process on purpose). */
  monitor?: false;
  run(ctx: ScenarioContext): Promise<void>;
}

/** Pause and resume each member in turn, `cycles` times or until `withinMs`; never two paused at once. */
async function storm(ctx: ScenarioContext, cycles: number, gapMs = 100, withinMs = Infinity): Promise<void> {
  const end = Date.now() + withinMs;
  for (let c = 0; c < cycles && Date.now() < end; c++) {
    const member = ctx.pool.members[c % ctx.pool.members.length]!.id;
    await ctx.pause(member);
    await ctx.sleep(gapMs);
    await ctx.resume(member);
    await ctx.sleep(gapMs);
  }
}

/** Polls a command until it works again (a store back after a fault); false after `timeoutMs`. */
async function recovers(ctx: ScenarioContext, member: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ctx.pause(member, { mayFail: true })) {
      await ctx.resume(member);
      return true;
    }
    await ctx.sleep(250);
  }
  return false;
}

/** Watches `member` for `ms`: any connection taken while it should be paused is counted. */
async function probePaused(ctx: ScenarioContext, member: string, until: Promise<unknown>): Promise<number> {
  let reached = 0;
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    if ((await tryConnect(ctx.pool.address(member), ctx.pool.echoPort)) === 'connected') reached++;
    await ctx.sleep(20);
  }
  return reached;
}

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines.slice(-2).join(' / ').slice(0, 300);
}

const toggles = (s: ChaosScale) => Math.max(1, Math.floor(s.cycles / 4));
const stormMs = (s: ChaosScale) => s.cycles * 600 + 1000;

export const scenarios: Scenario[] = [
  {
    name: 'pause-storm',
    store: 'sqlite',
    loadMs: stormMs,
    run: (ctx) => storm(ctx, ctx.scale.cycles * 2),
  },
  {
    name: 'dns-toggle',
    store: 'sqlite',
    loadMs: (s) => toggles(s) * 3000 + 500,
    // Issue 16 #8: clients cache an answer naming only m3 (m1 and m2 paused for longer than the TTL);
    // then m1 and m2 come back and m3 is paused — every cached address refuses until the client asks again.
    async run(ctx) {
      const ttlMs = ctx.pool.dnsTtlS * 1000;
      for (let c = 0; c < toggles(ctx.scale); c++) {
        await ctx.pause('m1');
        await ctx.pause('m2');
        await ctx.sleep(ttlMs + 300);
        await ctx.resume('m1');
        await ctx.resume('m2');
        await ctx.pause('m3');
        await ctx.sleep(ttlMs + 300);
        await ctx.resume('m3');
      }
    },
  },
  {
    name: 'kill-agent',
    store: 'sqlite',
    loadMs: () => 4000,
    // kill -9 of one agent, then of a paused member's agent: the first's sessions are cut (issue 16 #9),
    // the others' are not; the paused one comes back paused and no probe reaches it meanwhile.
    async run(ctx) {
      const { pool } = ctx;
      await ctx.pause('m3');
      ctx.cut('m2');
      await pool.kill('agent:m2');
      await ctx.sleep(500);
      ctx.cut('m3');
      await pool.kill('agent:m3');
      const restarted = pool.startProc('agent:m3').then(() => ctx.sleep(500));
      const reached = await probePaused(ctx, 'm3', restarted);
      if (reached)
        ctx.lie(
          `m3 was paused (exit 0); after its agent's kill -9 and restart, ${reached} probe(s) reached it`,
        );
      await pool.startProc('agent:m2');
      await ctx.resume('m3');
    },
  },
  {
    name: 'kill-api',
    store: 'sqlite',
    loadMs: () => 3000,
    async run(ctx) {
      await ctx.pool.kill('api:0');
      const down = await ctx.pool.command('pause', 'm1', 'echo', 2000);
      if (down.status === 200) ctx.broken('a command was answered with the API killed');
      await ctx.sleep(500);
      await ctx.pool.startProc('api:0');
      await ctx.pause('m1');
      await ctx.resume('m1');
    },
  },
  {
    name: 'kill-dns',
    store: 'sqlite',
    loadMs: () => 4000,
    // One of two `ebb dns` killed for longer than the TTL: clients ask the other.
    async run(ctx) {
      await ctx.pool.kill('dns:0');
      await ctx.pause('m1');
      await ctx.sleep(1500);
      await ctx.resume('m1');
      await ctx.pool.startProc('dns:0');
      await ctx.pool.kill('dns:1');
      await ctx.pause('m2');
      await ctx.sleep(1500);
      await ctx.resume('m2');
      await ctx.pool.startProc('dns:1');
    },
  },
  {
    name: 'cpu-starvation',
    store: 'sqlite',
    loadMs: (s) => s.starveMs + 1000,
    async run(ctx) {
      const loops = busyLoops(3, ctx.scale.starveMs);
      try {
        const end = Date.now() + ctx.scale.starveMs;
        let c = 0;
        while (Date.now() < end) {
          const member = ctx.pool.members[c++ % ctx.pool.members.length]!.id;
          await ctx.pause(member);
          await ctx.resume(member);
        }
        await loops.done;
      } finally {
        loops.stop();
      }
    },
  },
  {
    name: 'hostile-input',
    store: 'sqlite',
    loadMs: () => 5000,
    // While SIP calls are held: malformed SIP and DNS floods, slowloris and 10 MB bodies at the API.
    async run(ctx) {
      const { pool, scale } = ctx;
      const caller = await SipCaller.open();
      const perMember = Math.max(1, Math.floor(scale.held / 10));
      const calls = pool.members.flatMap((m) =>
        Array.from({ length: perMember }, () =>
          caller
            .call([{ host: m.address, port: pool.voicePort }], 'voice', 3500)
            .then(() => true)
            .catch(() => false),
        ),
      );
      const stopSlow = slowloris('127.0.0.1', pool.apiPort, scale.slow);
      const apiPid = pool.pid('api:0')!;
      const apiBefore = rssMb(apiPid);
      try {
        await Promise.all([
          ...pool.members.map((m) => udpFlood(m.address, pool.voicePort, scale.floods, 'sip')),
          ...pool.dnsServers.map((s) => {
            const [host, port] = s.split(':');
            return udpFlood(host!, Number(port), scale.floods, 'dns');
          }),
        ]);
        const bodies = await Promise.all(
          Array.from({ length: scale.bodies }, () =>
            postHugeBody('127.0.0.1', pool.apiPort, '/v1/members/m1/pause', 10 * 1024 * 1024),
          ),
        );
        // 0: the API closed while the sender was still writing, and the reset came before its 413 was read.
        const accepted = bodies.filter((b) => b.status !== 413 && b.status !== 0).length;
        if (accepted) ctx.broken(`${accepted} of ${bodies.length} 10 MB bodies were not refused`);
        const reset = bodies.filter((b) => b.status === 0).length;
        ctx.note(
          `${bodies.length - reset} of ${bodies.length} 10 MB bodies saw the 413, ${reset} a reset first`,
        );
        ctx.note(
          `api rss ${apiBefore} → ${rssMb(apiPid)} MB over ${scale.bodies} × 10 MB bodies and ${scale.slow} slowloris connections`,
        );
        // Each DNS server still answers, every member (a view another process follows may lag a moment).
        for (const server of pool.dnsServers) {
          const resolver = new PoolResolver({ server, timeoutMs: 1000 });
          let answered = 0;
          for (let i = 0; i < 10 && answered !== pool.members.length; i++) {
            if (i > 0) await ctx.sleep(200);
            answered = (await resolver.resolveService(pool.fqdn, 'echo', 'tcp').catch(() => [])).length;
          }
          if (answered !== pool.members.length)
            ctx.broken(
              `DNS ${server} answered ${answered} of ${pool.members.length} members after its flood`,
            );
        }
        // Commands still work with slowloris connections open.
        await ctx.pause('m1');
        await ctx.resume('m1');
        const held = await Promise.all(calls);
        const dropped = held.filter((ok) => !ok).length;
        if (dropped) ctx.broken(`${dropped} of ${held.length} held SIP calls failed during the floods`);
        else ctx.note(`${held.length} SIP calls held through ${scale.floods} malformed datagrams per member`);
      } finally {
        stopSlow();
        caller.close();
      }
    },
  },
  {
    name: 'disk-full',
    store: 'sqlite',
    loadMs: () => 4000,
    // The store's filesystem (a tmpfs) fills up; commands fail (never exit 0 without effect) while
    // sessions go on, and the store recovers by itself once space is back.
    async run(ctx) {
      if (!ctx.tmpfs) return ctx.broken('no tmpfs could be mounted (needs root): disk full not tested');
      // An empty WAL first (as after a checkpoint), so the store's next write needs new space.
      const db = new DatabaseSync(join(ctx.storeDir, 'state.db'));
      try {
        db.exec('PRAGMA busy_timeout = 2000; PRAGMA wal_checkpoint(TRUNCATE);');
      } finally {
        db.close();
      }
      const filler = join(ctx.storeDir, 'filler');
      const fd = openSync(filler, 'w');
      const chunk = Buffer.alloc(64 * 1024);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(fd);
      }
      // SQLite may still have room in pages it holds: a few commands until one fails.
      let full = await ctx.pool.command('pause', 'm1');
      for (let i = 0; i < 5 && full.status === 200; i++) {
        await ctx.resume('m1');
        full = await ctx.pool.command('pause', 'm1');
      }
      if (full.status === 200) {
        await ctx.resume('m1');
        ctx.note('the store never ran out of space: disk full not reached');
      } else if (!/SQLITE_FULL|ENOSPC|disk|full|space/i.test(full.body))
        ctx.broken(
          `on a full disk the command's error hides the cause: HTTP ${full.status} ${full.body.slice(0, 200)}`,
        );
      else ctx.note(`on a full disk: HTTP ${full.status} ${full.body.slice(0, 200)}`);
      await ctx.sleep(500);
      rmSync(filler);
      if (!(await recovers(ctx, 'm2', 5000))) ctx.broken('commands still fail 5 s after space came back');
    },
  },
  {
    name: 'store-readonly',
    store: 'sqlite',
    loadMs: () => 6000,
    // The store seen through a read-only mount: the API and m1's agent restarted on it. Commands must
    // fail (never exit 0 without the effect); the agent serves from its local copy; back on the writable
    // store, commands work again.
    async run(ctx) {
      const { pool } = ctx;
      if (!ctx.tmpfs) return ctx.broken('no tmpfs could be mounted (needs root): read-only store not tested');
      const roDir = `${ctx.storeDir}-ro`;
      bindReadOnly(ctx.storeDir, roDir);
      const roConfig = pool.configWithStore('pool-ro.yaml', `sqlite:${roDir}/state.db`);
      try {
        await pool.kill('api:0');
        const apiStart = pool.startProc('api:0', roConfig).then(
          () => 'started',
          (err: Error) => `did not start: ${lastLine(err.message)}`,
        );
        ctx.note(`api on a read-only store: ${await apiStart}`);
        ctx.cut('m1');
        await pool.kill('agent:m1');
        const agentStart = await pool.startProc('agent:m1', roConfig).then(
          () => 'started',
          (err: Error) => `did not start: ${lastLine(err.message)}`,
        );
        ctx.note(`agent m1 on a read-only store: ${agentStart}`);
        if (pool.pid('api:0')) {
          await ctx.pause('m2', { mayFail: true });
          await ctx.resume('m2', { mayFail: true });
        }
      } finally {
        await pool.kill('api:0');
        await pool.kill('agent:m1');
        unmount(roDir);
        rmSync(roDir, { recursive: true, force: true });
      }
      await pool.startProc('api:0');
      await pool.startProc('agent:m1');
      if (!(await recovers(ctx, 'm2', 5000)))
        ctx.broken('commands still fail 5 s after the store was writable again');
    },
  },
  {
    name: 'store-wiped',
    store: 'sqlite',
    loadMs: () => 0,
    load: false,
    held: false,
    monitor: false,
    // The store's files deleted, every process restarted: m3, paused, must stay paused (its agent has a
    // local copy) until an operator decides.
    async run(ctx) {
      const { pool } = ctx;
      await ctx.pause('m3');
      for (const suffix of ['', '-wal', '-shm']) {
        const file = join(ctx.storeDir, `state.db${suffix}`);
        if (existsSync(file)) rmSync(file);
      }
      await pool.stop();
      const up = pool.start(['m3']);
      const reached = await probePaused(
        ctx,
        'm3',
        up.catch(() => {}),
      );
      await up.catch((err: Error) => ctx.broken(`pool did not come back: ${err.message.split('\n')[0]}`));
      const after = await tryConnect(pool.address('m3'), pool.echoPort);
      if (reached || after === 'connected')
        ctx.lie(
          `m3 was paused (exit 0); after the store was wiped and the pool restarted it accepted (${reached} probe(s) reached it)`,
        );
      // The operator decides (issue 16 #4): a resume makes it accept again.
      if (!(await ctx.resume('m3'))) ctx.broken('m3: resume after the wipe did not make it accept');
    },
  },
  {
    name: 'etcd-stop-leader',
    store: 'etcd',
    loadMs: stormMs,
    async run(ctx) {
      const etcd = ctx.etcd!;
      const leader = await etcd.leader();
      const pid = etcd.pid(leader)!;
      process.kill(pid, 'SIGSTOP');
      try {
        ctx.note(`etcd member ${leader} (the leader) stopped`);
        await storm(ctx, ctx.scale.cycles, 100, 10_000);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await etcd.waitHealthy();
    },
  },
  {
    name: 'etcd-stop-watched',
    store: 'etcd',
    loadMs: stormMs,
    // The member serving the most watches (the agents') frozen, not dead: their watches stall.
    async run(ctx) {
      const etcd = ctx.etcd!;
      const counts = await Promise.all(Array.from({ length: etcd.size }, (_, i) => etcd.watchers(i)));
      const watched = counts.indexOf(Math.max(...counts));
      const pid = etcd.pid(watched)!;
      process.kill(pid, 'SIGSTOP');
      try {
        ctx.note(
          `etcd member ${watched} stopped (serving ${counts[watched]} of ${counts.reduce((a, b) => a + b, 0)} watches)`,
        );
        await storm(ctx, ctx.scale.cycles, 100, 10_000);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await etcd.waitHealthy();
    },
  },
  {
    name: 'etcd-lose-two',
    store: 'etcd',
    loadMs: () => 6000,
    // Two of three etcd members killed: no quorum. Agents keep serving their last intents; commands fail
    // fast (never exit 0); once the members are back, commands work again.
    async run(ctx) {
      const etcd = ctx.etcd!;
      const leader = await etcd.leader();
      const victims = [leader, (leader + 1) % etcd.size];
      for (const i of victims) await etcd.kill(i);
      await ctx.sleep(500);
      const started = Date.now();
      await ctx.pause('m1', { mayFail: true });
      const tookMs = Date.now() - started;
      // docs/deploy.md: "commands fail fast"; each store call has a 3 s budget.
      if (tookMs > 3500)
        ctx.finding(`a command without quorum failed after ${tookMs} ms (store call budget 3 s)`);
      else ctx.note(`a command without quorum failed after ${tookMs} ms`);
      await ctx.sleep(1500);
      await etcd.restartAll();
      if (!(await recovers(ctx, 'm2', 10_000))) ctx.broken('commands still fail 10 s after quorum came back');
    },
  },
  {
    name: 'kill-up',
    store: 'up',
    loadMs: () => 0,
    load: false,
    monitor: false,
    // Issue 16 #9: kill -9 of `ebb up` ends every session it proxies (the figure for docs/deploy.md);
    // what must hold is that m3, paused, comes back paused and no probe reaches it meanwhile.
    async run(ctx) {
      const { pool } = ctx;
      await ctx.pause('m3');
      for (const m of pool.members) ctx.cut(m.id);
      await pool.kill('up');
      const up = pool.startProc('up');
      const reached = await probePaused(
        ctx,
        'm3',
        up.catch(() => {}),
      );
      await up.catch((err: Error) => ctx.broken(`ebb up did not come back: ${lastLine(err.message)}`));
      await pool.until(async () => (await pool.accepting()).length === 2, 'm1 and m2 accept again');
      if (reached || (await tryConnect(pool.address('m3'), pool.echoPort)) === 'connected')
        ctx.lie(
          `m3 was paused (exit 0); after kill -9 of ebb up and a restart it accepted (${reached} probe(s))`,
        );
      await ctx.resume('m3');
    },
  },
];
