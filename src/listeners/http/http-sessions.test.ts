import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpSessionKind, HttpSessionTable, type HttpSession } from './http-sessions.ts';

function session(table: HttpSessionTable, kind: HttpSessionKind, endedAt: number[]): HttpSession {
  const s: HttpSession = {
    kind,
    forced: false,
    end: () => {
      endedAt.push(Date.now());
      setImmediate(() => table.close(s));
    },
  };
  table.open(s);
  return s;
}

describe('HttpSessionTable', () => {
  it('counts by kind, once each, and reports every change', () => {
    let changes = 0;
    const table = new HttpSessionTable(() => changes++);
    const a = session(table, HttpSessionKind.request, []);
    const b = session(table, HttpSessionKind.websocket, []);
    assert.deepEqual([table.requests, table.websockets, table.size, table.accepted], [1, 1, 2, 2]);
    table.close(a);
    table.close(a);
    table.close(b);
    assert.deepEqual([table.requests, table.websockets, table.size, table.forced], [0, 0, 0, 0]);
    assert.equal(changes, 4);
  });

  it('endAll cuts requests at once and spreads tunnels over the spread, each forced once', async () => {
    const table = new HttpSessionTable(() => {});
    const requestEnds: number[] = [];
    const tunnelEnds: number[] = [];
    for (let i = 0; i < 3; i++) session(table, HttpSessionKind.request, requestEnds);
    for (let i = 0; i < 10; i++) session(table, HttpSessionKind.websocket, tunnelEnds);
    const started = Date.now();
    const again = table.endAll(300); // a second call waits for the same sessions, ends none again
    assert.equal(await table.endAll(300), 0);
    assert.equal(await again, 13);
    assert.equal(requestEnds.length, 3);
    assert.ok(Math.max(...requestEnds) - started < 50);
    assert.equal(tunnelEnds.length, 10);
    const spread = Math.max(...tunnelEnds) - Math.min(...tunnelEnds);
    assert.ok(spread >= 200 && spread < 400, `spread ${spread} ms`);
    assert.equal(table.forced, 13);
  });

  it('a tunnel that closes by itself before its turn is not forced', async () => {
    const table = new HttpSessionTable(() => {});
    const ends: number[] = [];
    const tunnels = [
      session(table, HttpSessionKind.websocket, ends),
      session(table, HttpSessionKind.websocket, ends),
    ];
    const done = table.endAll(200);
    // The first is ended at once; the second (due at 100 ms) closes on its own at 50 ms.
    setTimeout(() => tunnels.forEach((t) => table.close(t)), 50);
    await done;
    assert.equal(table.size, 0);
    assert.equal(table.forced, 1);
  });
});
