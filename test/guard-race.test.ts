/**
 * SPEC §5: "two operators pausing the last two members at the same moment cannot both succeed".
 * Two independent API-side stacks (each its own store connection, PoolState and Controller, as two `ebb api`
 * processes would have) share one store — a SQLite file, and a real 3-member etcd cluster — with the agents
 * of a 2-member pool. Each round both pause a different member of the same service at once: exactly one
 * wins, the other is refused by the guard, and exactly one member still accepts.
 *
 * It runs under CPU starvation (two busy loops beside it, lease TTL 2 s), as on a loaded CI machine: that
 * is where a guard reading its inputs at different store revisions let both pauses win.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../src/config/index.ts';
import { Controller, PoolState, type AuditRecord } from '../src/control/index.ts';
import { EventCode, GuardRefusedError, parseIntent, type EbbEvent } from '../src/core/index.ts';
import { PoolRunner } from '../src/runner/index.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { EtcdCluster } from './harness/etcd-cluster.ts';

const rounds = 40;
const net = 100 + Math.floor(Math.random() * 150);
const port = 20_000 + Math.floor(Math.random() * 30_000);
const address = (i: number) => `127.0.${net}.${i}`;

function tryConnect(host: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

/**
 * Processes that spin, as other jobs on a busy CI machine do. Each stops by itself after 5 minutes, so
 * one that outlives the test (a test process killed hard) cannot load the machine for long; the test
 * ends them by PID.
 */
function busyLoops(count: number): ChildProcess[] {
  const spin = 'const end = Date.now() + 300_000; while (Date.now() < end) {}';
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', spin], { stdio: 'ignore' }));
}

interface Side {
  name: string;
  store: Store;
  state: PoolState;
  controller: Controller;
  events: EbbEvent[];
  lostCas: number;
}

const backends = [
  {
    name: 'one SQLite file',
    start: async (dir: string) => ({ spec: `sqlite:${join(dir, 'state.db')}`, stop: async () => {} }),
  },
  {
    name: 'a 3-member etcd cluster',
    start: async () => {
      const cluster = await EtcdCluster.start();
      return { spec: `etcd://${cluster.endpoints.join(',')}`, stop: () => cluster.stop() };
    },
  },
];

for (const backend of backends) raceSuite(backend);

function raceSuite(backend: (typeof backends)[number]): void {
  describe(`capacity guard under a race between two API processes on ${backend.name}, under CPU starvation`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebb-guard-race-'));
    let config: ReturnType<typeof validateConfig>;
    let agents: PoolRunner;
    let stopBackend: () => Promise<void> = async () => {};
    let spinners: ChildProcess[] = [];
    const makeConfig = (spec: string) =>
      validateConfig({
        pool: { name: 'race', fqdn: 'race.ebb.test', minAccepting: 1 },
        store: spec,
        agent: { leaseTtl: '3s', localState: join(dir, 'local') }, // etcd refuses less (issue 16)
        members: [1, 2].map((i) => ({
          id: `m${i}`,
          address: address(i),
          services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port, upstream: 'builtin:echo' }] }],
        })),
      });
    const sides: Side[] = [];

    async function openSide(name: string): Promise<Side> {
      const store = await openStore(config.store);
      const state = new PoolState(config, store);
      await state.start();
      const events: EbbEvent[] = [];
      state.onEvent((event) => events.push(event));
      const side: Side = { name, store, state, controller: new Controller(state, store), events, lostCas: 0 };
      // Count compare-and-set writes that found the intents changed under them: proof the two really raced.
      const txn = store.txn.bind(store);
      store.txn = async (compares, ops) => {
        const result = await txn(compares, ops);
        if (!result.succeeded) side.lostCas++;
        return result;
      };
      return side;
    }

    const accepting = (state: PoolState) =>
      state
        .snapshot()
        .members.filter((m) => m.services[0]!.accepting)
        .map((m) => m.id);

    before(async () => {
      const started = await backend.start(dir);
      stopBackend = started.stop;
      config = makeConfig(started.spec);
      // The agents of both members, with their own store connection; no API, no DNS.
      agents = new PoolRunner({ config, logger: pino({ level: 'silent' }), api: false, dns: false });
      await agents.start();
      spinners = busyLoops(2);
      sides.push(await openSide('A'), await openSide('B'));
      for (const side of sides) {
        const ready = await side.state.waitFor(() => accepting(side.state).length === 2, 5000);
        assert.ok(ready, `side ${side.name} sees both members accepting`);
      }
    });

    after(async () => {
      for (const spinner of spinners) spinner.kill('SIGKILL');
      for (const side of sides) {
        side.state.stop();
        await side.store.close();
      }
      await agents?.stop();
      await stopBackend();
      rmSync(dir, { recursive: true, force: true });
    });

    it(`exactly one of two simultaneous pauses wins, ${rounds} rounds out of ${rounds}`, async () => {
      const winners: string[] = [];
      for (let round = 0; round < rounds; round++) {
        // Alternate which process pauses which member, and which call starts first, so either can win.
        const [a, b] = round % 2 === 0 ? [sides[0]!, sides[1]!] : [sides[1]!, sides[0]!];
        const pauseM1 = () =>
          a.controller.execute({
            action: 'pause',
            member: 'm1',
            service: 'echo',
            reason: `r${round}`,
            by: a.name,
          });
        const pauseM2 = () =>
          b.controller.execute({
            action: 'pause',
            member: 'm2',
            service: 'echo',
            reason: `r${round}`,
            by: b.name,
          });
        let m1: Promise<unknown>;
        let m2: Promise<unknown>;
        if (round % 4 < 2) {
          m1 = pauseM1();
          m2 = pauseM2();
        } else {
          m2 = pauseM2();
          m1 = pauseM1();
        }
        const results = await Promise.allSettled([m1, m2]);
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i === 0 ? 'm1' : 'm2'] : []));
        const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        assert.equal(
          won.length,
          1,
          `round ${round}: exactly one pause succeeds (${JSON.stringify(results)})`,
        );
        assert.equal(lost.length, 1);
        assert.ok(
          lost[0] instanceof GuardRefusedError,
          `round ${round}: the other is refused by the guard: ${String(lost[0])}`,
        );
        const winner = won[0]!;
        const loser = winner === 'm1' ? 'm2' : 'm1';
        winners.push(winner);

        // The store holds exactly one paused intent (a member never commanded has no key: it runs).
        const runs = await Promise.all(
          ['m1', 'm2'].map(async (m) => {
            const row = await agents.store.get(agents.state.keys.intent(m, 'echo'));
            return row ? parseIntent(row.value)!.run : 'running';
          }),
        );
        assert.deepEqual(
          runs.filter((r) => r === 'running').length,
          1,
          `round ${round}: intents ${runs.join(',')}`,
        );

        // The winner's pause has returned, so its listener refuses; the loser's still accepts.
        const winnerAddress = address(winner === 'm1' ? 1 : 2);
        const loserAddress = address(loser === 'm1' ? 1 : 2);
        assert.equal(await tryConnect(winnerAddress), 'ECONNREFUSED', `round ${round}: ${winner} refuses`);
        assert.equal(await tryConnect(loserAddress), 'connected', `round ${round}: ${loser} accepts`);
        for (const side of sides) {
          const one = await side.state.waitFor(() => accepting(side.state).join() === loser, 3000);
          assert.ok(one, `round ${round}: side ${side.name} sees exactly ${loser} accepting`);
        }

        // Resume between rounds, through either side.
        const resumed = await sides[round % 2]!.controller.execute({
          action: 'resume',
          member: winner,
          service: 'echo',
          by: 'test',
        });
        assert.equal(resumed.applied, true);
        for (const side of sides) {
          assert.ok(
            await side.state.waitFor(() => accepting(side.state).length === 2, 3000),
            'both accept again',
          );
        }
      }
      assert.equal(winners.length, rounds);
      assert.ok(new Set(winners).size === 2, `both members won some rounds: ${winners.join(',')}`);
      const lostCas = sides.reduce((n, side) => n + side.lostCas, 0);
      assert.ok(lostCas > 0, 'the two commands really raced: a compare-and-set failed and was retried');
    });

    it('every refusal was emitted as guard.refused and audited', async () => {
      const refusedEvents = sides.flatMap((s) => s.events.filter((e) => e.code === EventCode.guardRefused));
      assert.equal(refusedEvents.length, rounds);
      const audit = (await sides[0]!.controller.auditLog(1000)) as AuditRecord[];
      const pauses = audit.filter((a) => a.action === 'pause');
      assert.equal(pauses.filter((a) => a.result === 'ok').length, rounds);
      assert.equal(pauses.filter((a) => a.result === 'refused').length, rounds);
    });

    it('the last accepting member, its lease lapsed while it still serves, cannot be paused into an empty pool', async () => {
      const side = sides[0]!;
      const pause = (member: string, reason: string) =>
        side.controller.execute({ action: 'pause', member, service: 'echo', reason, by: side.name });
      assert.equal((await pause('m1', 'lapse: m1 first')).applied, true);
      // m2's agent key goes as when its lease lapses; the agent itself goes on serving.
      await agents.store.delete(agents.state.keys.agent('m2'));
      assert.ok(await side.state.waitFor(() => !side.state.agentUp('m2'), 5000), 'm2 seen as down');
      assert.equal(await tryConnect(address(2)), 'connected', 'm2 still serves');
      await assert.rejects(pause('m2', 'lapse: m2 last'), (err: unknown) => err instanceof GuardRefusedError);
      assert.equal(await tryConnect(address(2)), 'connected', 'm2 still accepts: the pool did not run dry');
      const intent = await agents.store.get(agents.state.keys.intent('m2', 'echo'));
      assert.notEqual(
        intent && parseIntent(intent.value)?.run,
        'paused',
        'no paused intent was written for m2',
      );
    });
  });
}
