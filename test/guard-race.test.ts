/**
 * SPEC §5: "two operators pausing the last two members at the same moment cannot both succeed".
 * Two independent API-side stacks (each its own SQLite connection, PoolState and Controller, as two `ebb api`
 * processes would have) share ONE SQLite file with the agents of a 2-member pool. Each round both pause a
 * different member of the same service at once: exactly one wins, the other is refused by the guard, and
 * exactly one member still accepts.
 */
import assert from 'node:assert/strict';
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
import { SqliteStore } from '../src/store/index.ts';

const rounds = 20;
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

interface Side {
  name: string;
  store: SqliteStore;
  state: PoolState;
  controller: Controller;
  events: EbbEvent[];
  lostCas: number;
}

describe('capacity guard under a race between two API processes on one SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-guard-race-'));
  const dbPath = join(dir, 'state.db');
  const config = validateConfig({
    pool: { name: 'race', fqdn: 'race.ebb.test', minAccepting: 1 },
    store: `sqlite:${dbPath}`,
    agent: { leaseTtl: '2s', localState: join(dir, 'local') },
    members: [1, 2].map((i) => ({
      id: `m${i}`,
      address: address(i),
      services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port, upstream: 'builtin:echo' }] }],
    })),
  });
  // The agents of both members, with their own connection to the file; no API, no DNS.
  const agents = new PoolRunner({ config, logger: pino({ level: 'silent' }), api: false, dns: false });
  const sides: Side[] = [];

  async function openSide(name: string): Promise<Side> {
    const store = new SqliteStore(dbPath);
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
    await agents.start();
    sides.push(await openSide('A'), await openSide('B'));
    for (const side of sides) {
      const ready = await side.state.waitFor(() => accepting(side.state).length === 2, 5000);
      assert.ok(ready, `side ${side.name} sees both members accepting`);
    }
  });

  after(async () => {
    for (const side of sides) {
      side.state.stop();
      await side.store.close();
    }
    await agents.stop();
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
      assert.equal(won.length, 1, `round ${round}: exactly one pause succeeds (${JSON.stringify(results)})`);
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
});
