import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SipFlowDrainer } from './sip-flow-drainer.ts';

function setup(ids: number[], busy: number[] = []) {
  const open = new Set(ids);
  const inUse = new Set(busy);
  const closed: number[] = [];
  const clock = { now: 0 };
  const randoms = [0.9, 0.1, 0.5, 0.3];
  let r = 0;
  const drainer = new SipFlowDrainer({
    flows: {
      ids: () => open,
      busy: () => inUse,
      close: (id) => {
        closed.push(id);
        open.delete(id);
      },
    },
    spreadMs: 10_000,
    random: () => randoms[r++ % randoms.length]!,
    now: () => clock.now,
  });
  return { drainer, open, inUse, closed, clock };
}

describe('SipFlowDrainer', () => {
  it('closes idle flows at random moments within closeSpread, in that order', () => {
    const h = setup([1, 2, 3]);
    h.drainer.tick(0); // due at 9000, 1000, 5000
    assert.deepEqual(h.closed, []);
    for (const t of [1000, 4999, 5000, 9000]) h.drainer.tick(t);
    assert.deepEqual(h.closed, [2, 3, 1]);
  });

  it('a busy flow waits for its last call; a flow opened later gets its own moment', () => {
    const h = setup([1, 2], [1]);
    h.drainer.tick(0); // 1 at 9000, 2 at 1000
    h.drainer.tick(10_000);
    assert.deepEqual(h.closed, [2], 'the flow with a call stays');
    h.open.add(7);
    h.drainer.tick(10_000); // 7 due at 15000
    h.inUse.clear();
    h.drainer.tick(10_001);
    assert.deepEqual(h.closed, [2, 1], 'closed once its call ended');
    h.drainer.tick(15_000);
    assert.deepEqual(h.closed, [2, 1, 7]);
  });

  it('stop() (resume) forgets the closes not made yet', () => {
    const h = setup([1]);
    h.drainer.tick(0);
    h.drainer.stop();
    h.drainer.tick(1);
    assert.deepEqual(h.closed, [], 'a new moment was drawn');
  });
});

describe('SipFlowDrainer under any schedule (fast-check)', () => {
  it('closes every idle flow exactly once, never a busy one, none before its moment nor after closeSpread + a tick once idle', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ busyUntil: fc.nat(30_000), opensAt: fc.nat(10_000) }), { maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 0.999_999, noNaN: true }), { minLength: 1, maxLength: 30 }),
        (flows, randoms) => {
          const spreadMs = 10_000;
          let now = 0;
          let r = 0;
          const closedAt = new Map<number, number>();
          const open = new Set<number>();
          const drainer = new SipFlowDrainer({
            flows: {
              ids: () => open,
              busy: () => new Set([...open].filter((id) => flows[id]!.busyUntil > now)),
              close: (id) => {
                assert.ok(!closedAt.has(id), `flow ${id} closed twice`);
                assert.ok(flows[id]!.busyUntil <= now, `flow ${id} closed while busy`);
                closedAt.set(id, now);
                open.delete(id);
              },
            },
            spreadMs,
            random: () => randoms[r++ % randoms.length]!,
          });
          for (now = 0; now <= 50_000; now += 100) {
            flows.forEach((f, id) => {
              if (f.opensAt - (f.opensAt % 100) === now) open.add(id); // opens at the tick it falls in
            });
            drainer.tick(now);
          }
          flows.forEach((f, id) => {
            const at = closedAt.get(id);
            assert.ok(at !== undefined, `flow ${id} never closed`);
            const opened = f.opensAt - (f.opensAt % 100);
            assert.ok(at <= Math.max(opened + spreadMs, f.busyUntil) + 100, `flow ${id} closed late (${at})`);
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
