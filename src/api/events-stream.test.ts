import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Hono } from 'hono';
import type { PoolChange, PoolStatus, ServiceStatusView } from '../control/index.ts';
import type { EbbEvent } from '../core/index.ts';
import { createApiApp } from './api-app.ts';
import { apiBase, InMemoryPool, SseReader, sleep, type SseMessage } from './api-test-support.ts';
import {
  EventsStream,
  type EventsStreamOptions,
  type PoolFeed,
  type SessionsUpdate,
} from './events-stream.ts';

/** A pool status the test changes by hand, with the listener bookkeeping of PoolState. */
class FakeFeed implements PoolFeed {
  readonly changeListeners = new Set<(changes: readonly PoolChange[]) => void>();
  readonly eventListeners = new Set<(event: EbbEvent) => void>();
  status: PoolStatus = {
    pool: { name: 'p', fqdn: 'p.ebb.test', minAccepting: 1 },
    members: ['m1', 'm2'].map((id) => ({
      id,
      address: '127.0.0.1',
      agent: 'up' as const,
      readyForOffline: false,
      services: ['alpha', 'beta'].map((s) => service(s)),
    })),
  };
  snapshot(): PoolStatus {
    return structuredClone(this.status);
  }
  onChange(listener: (changes: readonly PoolChange[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }
  onEvent(listener: (event: EbbEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }
  service(member: string, id: string): ServiceStatusView {
    return this.status.members.find((m) => m.id === member)!.services.find((s) => s.id === id)!;
  }
  change(): void {
    for (const listener of [...this.changeListeners]) listener([{ kind: 'resync' }]);
  }
  emit(event: Omit<EbbEvent, 'at'>): void {
    for (const listener of [...this.eventListeners]) listener({ at: Date.now(), ...event });
  }
}

function service(id: string): ServiceStatusView {
  return {
    id,
    name: id,
    components: [],
    state: 'running',
    startup: 'automatic',
    intent: 'running',
    accepting: true,
    minAccepting: 1,
    refused: 0,
    sessions: 0,
    drained: false,
    forced: 0,
    accepted: 0,
    upstreamFailures: 0,
    drainStartedAt: null,
    drainedAt: null,
    deadlineAt: null,
    reason: '',
    intentBy: 'config',
    intentAt: null,
    pending: false,
    error: null,
    applyError: null,
    sessionsByKind: {},
    idleConnections: 0,
    flows: 0,
  };
}

function setup(options: EventsStreamOptions = {}) {
  const feed = new FakeFeed();
  const stream = new EventsStream(feed, options);
  const app = new Hono();
  app.get('/v1/events', (c) => stream.respond(c));
  const open = async (lastEventId?: string) => {
    const res = await app.request(`${apiBase}/v1/events`, {
      headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    return new SseReader(res.body);
  };
  const connect = async () => {
    const reader = await open();
    const hello = await reader.next();
    assert.equal(hello.event, 'hello');
    return { reader, hello: JSON.parse(hello.data) as PoolStatus, helloId: hello.id };
  };
  return { feed, stream, connect, open };
}

const data = <T>(m: SseMessage) => JSON.parse(m.data) as T;
const waitUntil = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not reached`);
    await sleep(5);
  }
};

describe('GET /v1/events: the live event stream', () => {
  it('starts with the pool snapshot, then passes every SPEC §2 event through, in order', async () => {
    const { feed, connect } = setup();
    const { reader, hello } = await connect();
    assert.equal(hello.members.length, 2);
    const codes = [
      'service.paused',
      'session.forced',
      'service.drained',
      'guard.refused',
      'agent.down',
    ] as const;
    for (const code of codes) feed.emit({ code, member: 'm1', service: 'alpha', data: { sessions: 0 } });
    const got = await reader.until((m) => m.event === 'agent.down');
    assert.deepEqual(
      got.map((m) => m.event),
      codes,
    );
    assert.equal(data<EbbEvent>(got[0]!).member, 'm1');
    await reader.cancel();
  });

  it('coalesces session counts: thousands of changes become a few events per service, the last one exact', async () => {
    const { feed, connect } = setup({ sessionsIntervalMs: 100 });
    const { reader } = await connect();
    const started = Date.now();
    let changes = 0;
    while (Date.now() - started < 350) {
      for (let i = 0; i < 100; i++) {
        feed.service('m1', 'alpha').sessions++;
        feed.service('m1', 'alpha').accepted++;
        changes++;
        feed.change();
      }
      feed.service('m2', 'beta').sessions += 1;
      feed.change();
      await sleep(1);
    }
    const elapsed = Date.now() - started;
    assert.ok(changes >= 1000, `${changes} changes`);
    const messages = await reader.collect(250);
    const sessions = messages.filter((m) => m.event === 'sessions').map((m) => data<SessionsUpdate>(m));
    const alpha = sessions.filter((s) => s.member === 'm1' && s.service === 'alpha');
    const beta = sessions.filter((s) => s.member === 'm2' && s.service === 'beta');
    const allowed = Math.ceil(elapsed / 100) + 2;
    assert.ok(alpha.length >= 2 && alpha.length <= allowed, `${alpha.length} alpha events (≤ ${allowed})`);
    assert.ok(beta.length >= 2 && beta.length <= allowed, `${beta.length} beta events (≤ ${allowed})`);
    assert.equal(alpha.at(-1)!.sessions, feed.service('m1', 'alpha').sessions, 'the newest count arrives');
    assert.equal(alpha.at(-1)!.accepted, changes);
    assert.equal(beta.at(-1)!.sessions, feed.service('m2', 'beta').sessions);
    assert.ok(
      messages.every((m) => m.event === 'sessions'),
      'counts alone do not send pool snapshots',
    );
    await reader.cancel();
  });

  it('sends the first count change at once', async () => {
    const { feed, connect } = setup({ sessionsIntervalMs: 10_000 });
    const { reader } = await connect();
    feed.service('m2', 'alpha').sessions = 7;
    feed.change();
    const message = await reader.next(500);
    assert.equal(message.event, 'sessions');
    assert.deepEqual(
      { ...data<Record<string, unknown>>(message), at: 0 },
      { member: 'm2', service: 'alpha', sessions: 7, accepted: 0, forced: 0, at: 0 },
    );
    await reader.cancel();
  });

  it('a state change sends a pool snapshot', async () => {
    const { feed, connect } = setup();
    const { reader } = await connect();
    Object.assign(feed.service('m1', 'beta'), { state: 'paused', accepting: false, intent: 'paused' });
    feed.change();
    const message = await reader.next();
    assert.equal(message.event, 'pool');
    assert.equal(data<PoolStatus>(message).members[0]!.services[1]!.state, 'paused');
    feed.change(); // nothing new
    assert.deepEqual(await reader.collect(100), []);
    await reader.cancel();
  });

  it('sends a heartbeat comment', async () => {
    const { connect } = setup({ heartbeatMs: 30 });
    const { reader } = await connect();
    const message = await reader.next(1000);
    assert.deepEqual(message, { event: null, data: 'heartbeat' });
    await reader.cancel();
  });

  it('a client that does not read is resynced instead of growing a queue', async () => {
    const { feed, stream, connect } = setup({ maxQueue: 16 });
    const { reader } = await connect();
    for (let i = 0; i < 2000; i++) feed.emit({ code: 'session.forced', member: 'm1', data: { i } });
    await sleep(20);
    const messages = await reader.collect(200);
    assert.ok(messages.length <= 20, `${messages.length} messages, bounded by the queue`);
    const resync = messages.find((m) => m.event === 'resync');
    assert.ok(resync, 'a resync replaces what was dropped');
    const body = data<{ dropped: number; pool: PoolStatus }>(resync);
    assert.ok(body.dropped > 1900, `dropped ${body.dropped}`);
    assert.equal(body.pool.members.length, 2);
    const last = messages.filter((m) => m.event === 'session.forced').at(-1)!;
    assert.equal(
      (data<EbbEvent>(last).data as { i: number }).i,
      1999,
      'events after the resync still arrive',
    );
    assert.equal(stream.clients, 1);
    await reader.cancel();
  });

  it('a disconnect removes the client and, with the last one, the pool listeners and timers', async () => {
    const { feed, stream, connect } = setup({ sessionsIntervalMs: 50 });
    const a = await connect();
    const b = await connect();
    assert.equal(stream.clients, 2);
    assert.equal(feed.changeListeners.size, 1, 'one subscription for every client');
    feed.service('m1', 'alpha').sessions = 1;
    feed.change();
    feed.service('m1', 'alpha').sessions = 2;
    feed.change(); // leaves a pending update behind a timer
    await a.reader.cancel();
    await waitUntil(() => stream.clients === 1, 'one client left');
    assert.equal(feed.changeListeners.size, 1);
    await b.reader.cancel();
    await waitUntil(() => stream.clients === 0, 'no client left');
    assert.equal(feed.changeListeners.size, 0);
    assert.equal(feed.eventListeners.size, 1, 'events are still recorded, for clients that come back');
    stream.close();
    assert.equal(feed.eventListeners.size, 0, 'until close()');
  });

  it('SPEC §2 events carry increasing ids of this process; hello carries the newest one', async () => {
    const { feed, stream, connect } = setup();
    const first = await connect();
    assert.match(first.helloId ?? '', /^[0-9a-f]{8}-0$/);
    const epoch = first.helloId!.split('-')[0];
    for (let i = 0; i < 3; i++) feed.emit({ code: 'service.paused', member: 'm1', data: { i } });
    feed.service('m1', 'alpha').sessions = 4;
    feed.change();
    const got = await first.reader.until((m) => m.event === 'service.paused' && m.id === `${epoch}-3`);
    const ids = got.filter((m) => m.event === 'service.paused').map((m) => m.id);
    assert.deepEqual(ids, [`${epoch}-1`, `${epoch}-2`, `${epoch}-3`]);
    const counts = await first.reader.until((m) => m.event === 'sessions');
    assert.equal(counts.at(-1)!.id, undefined, 'counts are state, not history: no id');
    const second = await connect();
    assert.equal(second.helloId, `${epoch}-3`);
    await first.reader.cancel();
    await second.reader.cancel();
    stream.close();
  });

  it('a reconnect with Last-Event-ID gets the events it missed, then the pool', async () => {
    const { feed, stream, connect, open } = setup();
    const { reader } = await connect();
    feed.emit({ code: 'service.paused', member: 'm1', service: 'alpha' });
    const seen = await reader.next();
    await reader.cancel();
    await waitUntil(() => stream.clients === 0, 'disconnected');
    feed.emit({ code: 'session.forced', member: 'm1', service: 'alpha', data: { n: 1 } });
    feed.emit({ code: 'service.drained', member: 'm1', service: 'alpha' });
    Object.assign(feed.service('m1', 'alpha'), { state: 'paused', accepting: false });

    const resumed = await open(seen.id);
    const got = await resumed.until((m) => m.event === 'pool');
    assert.deepEqual(
      got.map((m) => m.event),
      ['session.forced', 'service.drained', 'pool'],
    );
    const epoch = seen.id!.split('-')[0];
    assert.deepEqual(
      got.map((m) => m.id),
      [`${epoch}-2`, `${epoch}-3`, undefined],
    );
    assert.equal(data<PoolStatus>(got[2]!).members[0]!.services[0]!.state, 'paused', 'the current pool');
    feed.emit({ code: 'service.resumed', member: 'm1', service: 'alpha' });
    const live = await resumed.until((m) => m.event === 'service.resumed');
    assert.equal(live.at(-1)!.id, `${epoch}-4`, 'then live events, in order');
    await resumed.cancel();

    const upToDate = await open(`${epoch}-4`);
    assert.equal((await upToDate.next()).event, 'pool', 'nothing missed: just the pool');
    await upToDate.cancel();
    stream.close();
  });

  it('an id older than the buffer: a resync that counts what is lost, then what is buffered', async () => {
    const { feed, stream, connect, open } = setup({ historySize: 3 });
    const { reader, helloId } = await connect();
    await reader.cancel();
    for (let i = 1; i <= 6; i++) feed.emit({ code: 'session.forced', member: 'm1', data: { i } });
    const resumed = await open(helloId);
    const got = await resumed.until((m) => (data<{ data?: { i?: number } }>(m).data?.i ?? 0) === 6);
    assert.equal(got[0]!.event, 'resync');
    const body = data<{ dropped: number; pool: PoolStatus; reason: string }>(got[0]!);
    assert.deepEqual([body.dropped, body.reason, body.pool.members.length], [3, 'too-old', 2]);
    assert.deepEqual(
      got.slice(1).map((m) => (data<EbbEvent>(m).data as { i: number }).i),
      [4, 5, 6],
    );
    await resumed.cancel();
    stream.close();
  });

  it('an id of another API process, from the future or malformed: a resync with the whole pool', async () => {
    const { feed, stream, connect, open } = setup();
    const { reader, helloId } = await connect();
    await reader.cancel();
    feed.emit({ code: 'service.paused', member: 'm2' });
    const epoch = helloId!.split('-')[0]!;
    const other = epoch === '00000000' ? '11111111' : '00000000';
    for (const id of [`${other}-1`, `${epoch}-99`, 'garbage', `${epoch}-1e3`]) {
      const resumed = await open(id);
      const first = await resumed.next();
      assert.equal(first.event, 'resync', id);
      assert.equal(first.id, `${epoch}-1`, 'the resync carries the newest id');
      const body = data<{ dropped: number; pool: PoolStatus; reason: string }>(first);
      assert.deepEqual([body.dropped, body.reason, body.pool.members.length], [0, 'unknown-id', 2]);
      await resumed.cancel();
    }
    stream.close();
    const after = await open(`${epoch}-1`);
    assert.equal((await after.next()).event, 'resync', 'after close() the old ids are unknown');
    await after.cancel();
    stream.close();
  });

  it('close() ends every stream', async () => {
    const { stream, connect } = setup();
    const { reader } = await connect();
    stream.close();
    await assert.rejects(reader.next(1000), /ended/);
    await waitUntil(() => stream.clients === 0, 'closed');
  });
});

describe('GET /v1/events on the API app, from a real read model', () => {
  const pool = new InMemoryPool();
  after(() => pool.close());

  it('agent events written to the store reach the stream; counts arrive as sessions events', async () => {
    await pool.start();
    await pool.agentUp('m1');
    await pool.status('m1', 'alpha', { sessions: 0 });
    const app = createApiApp({ state: pool.state, controller: pool.controller });
    const res = await app.request(`${apiBase}/v1/events`);
    const reader = new SseReader(res.body);
    const hello = await reader.next();
    assert.equal(hello.event, 'hello');
    assert.equal(data<PoolStatus>(hello).members[0]!.agent, 'up');

    await pool.status('m1', 'alpha', { sessions: 3, accepted: 3 });
    const sessions = await reader.until((m) => m.event === 'sessions');
    assert.equal(data<{ sessions: number }>(sessions.at(-1)!).sessions, 3);

    await pool.status('m1', 'alpha', { state: 'paused', accepting: false, drainStartedAt: Date.now() });
    await pool.event({ code: 'service.paused', member: 'm1', service: 'alpha', data: { sessions: 3 } });
    const got = await reader.until((m) => m.event === 'service.paused');
    const snapshot = got.find((m) => m.event === 'pool');
    assert.ok(snapshot, 'a pool snapshot tells the new state');
    assert.equal(data<PoolStatus>(snapshot).members[0]!.services[0]!.state, 'paused');
    await reader.cancel();
  });
});
