import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EbbError, EventCode, InvalidTransitionError, type EbbEvent } from '../core/index.ts';
import {
  ListenerLifecycle,
  type Listener,
  type ListenerEvents,
  type ListenerState,
  type ListenerStats,
} from '../listeners/index.ts';
import { ServiceRuntime } from './service-runtime.ts';

/**
 * A listener whose sessions the test opens and closes by hand; it records what the runtime asked of it.
 * It runs the real `ListenerLifecycle`, so the runtime meets the same state machine as in production.
 */
class FakeListener implements Listener {
  readonly description = 'fake 127.0.0.1:1 → nowhere';
  readonly calls: string[] = [];
  failOpen: Error | null = null;
  failEnd: Error | null = null;
  private readonly events: ListenerEvents;
  private readonly life: ListenerLifecycle;
  private readonly live = new Set<number>();
  private nextId = 1;
  private readonly counts = { accepted: 0, forced: 0, upstreamFailures: 0 };

  constructor(events: ListenerEvents) {
    this.events = events;
    this.life = new ListenerLifecycle(this.description, {
      bind: async () => {
        if (this.failOpen) throw this.failOpen;
      },
      refuse: async () => {},
      accept: async () => {},
      stopListening: async () => {},
      endSessions: async () => this.endAll(),
      release: async () => {},
      sessions: () => this.live.size,
    });
  }

  /** The lifecycle's state, by the name the assertions below use. */
  get mode(): ListenerState {
    return this.life.state;
  }

  get state(): ListenerState {
    return this.life.state;
  }

  stats(): ListenerStats {
    const n = this.live.size;
    return {
      sessions: n,
      byKind: { fake: n },
      refused: 0,
      acceptErrors: 0,
      idleConnections: 0,
      ...this.counts,
    };
  }

  open(refusing: boolean): Promise<void> {
    this.calls.push(`open(${refusing})`);
    return this.life.open(refusing);
  }
  refuse(): Promise<void> {
    this.calls.push('refuse');
    return this.life.refuse();
  }
  accept(): Promise<void> {
    this.calls.push('accept');
    return this.life.accept();
  }
  endSessions(): Promise<number> {
    this.calls.push('endSessions');
    return this.life.endSessions();
  }
  close(): Promise<void> {
    this.calls.push('close');
    return this.life.close();
  }
  closeToNew(): Promise<void> {
    this.calls.push('closeToNew');
    this.life.close().catch(() => {});
    return this.life.stoppedTaking();
  }
  destroy(): Promise<number> {
    this.calls.push('destroy');
    return this.life.destroy();
  }

  private endAll(): number {
    if (this.failEnd) throw this.failEnd;
    const ids = [...this.live];
    for (const id of ids) this.end(id, true);
    return ids.length;
  }

  private end(id: number, forced: boolean): void {
    this.live.delete(id);
    if (forced) this.counts.forced++;
    this.life.sessionsChanged();
    this.events.onChange(false);
  }

  /** A client connects: a new session when accepting; throws as a refused connect otherwise. */
  connect(): number {
    if (this.mode !== 'accepting') throw new Error(`refused (${this.mode})`);
    const id = this.nextId++;
    this.live.add(id);
    this.counts.accepted++;
    this.events.onChange(false);
    return id;
  }
  /** The parties end the session themselves. */
  hangUp(id: number): void {
    assert.ok(this.live.has(id), `session ${id} is live`);
    this.end(id, false);
  }
  upstreamDown(): void {
    this.counts.upstreamFailures++;
    this.events.onChange(false);
  }
  acceptFailed(err: EbbError): void {
    this.events.onError?.(err);
  }
}

function setup(listenerCount = 1) {
  const events: EbbEvent[] = [];
  const listeners: FakeListener[] = [];
  let urgentChanges = 0;
  const listenerErrors: EbbError[] = [];
  const runtime = new ServiceRuntime({
    member: 'fe01',
    service: 'echo',
    listeners: (listenerEvents) => {
      for (let i = 0; i < listenerCount; i++) listeners.push(new FakeListener(listenerEvents));
      return listeners;
    },
    onEvent: (event) => events.push(event),
    onChange: (urgent) => {
      if (urgent) urgentChanges++;
    },
    onListenerError: (err) => listenerErrors.push(err),
  });
  const codes = () => events.map((e) => e.code);
  const count = (code: string) => events.filter((e) => e.code === code).length;
  return {
    runtime,
    listeners,
    listener: listeners[0]!,
    events,
    codes,
    count,
    urgent: () => urgentChanges,
    listenerErrors,
  };
}

/** Waits (bounded) until `predicate` holds; the runtime's drain work runs on later ticks. */
async function until(predicate: () => boolean, what: string, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets queued microtasks and timers of 0 ms run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('ServiceRuntime (SPEC §2)', () => {
  it('starts stopped, and start opens every listener and runs', async () => {
    const { runtime, listeners, codes, events, urgent } = setup(2);
    assert.equal(runtime.state, 'stopped');
    assert.equal(runtime.accepting, false);
    await runtime.start();
    assert.equal(runtime.state, 'running');
    assert.equal(runtime.accepting, true);
    for (const l of listeners) assert.deepEqual(l.calls, ['open(false)']);
    assert.deepEqual(codes(), [EventCode.serviceStarted]);
    assert.equal(events[0]!.member, 'fe01');
    assert.equal(events[0]!.service, 'echo');
    assert.equal(typeof events[0]!.at, 'number');
    assert.ok(urgent() >= 1, 'a state change is reported as urgent');
    await runtime.start(); // already started: nothing happens
    assert.deepEqual(codes(), [EventCode.serviceStarted]);
  });

  it('start paused opens refusing, and with no sessions it is drained at once', async () => {
    const { runtime, listener, codes } = setup();
    await runtime.start(true);
    assert.equal(runtime.state, 'paused');
    assert.equal(runtime.accepting, false);
    assert.deepEqual(listener.calls, ['open(true)']);
    assert.throws(() => listener.connect(), /refused/);
    await until(() => codes().includes(EventCode.serviceDrained), 'service.drained');
    assert.deepEqual(codes(), [EventCode.servicePaused, EventCode.serviceDrained]);
    const status = runtime.status();
    assert.equal(status.drained, true);
    assert.notEqual(status.drainStartedAt, null);
    assert.notEqual(status.drainedAt, null);
  });

  it('pause refuses before it returns; existing sessions go on; drained exactly once at 0', async () => {
    const { runtime, listener, codes, count, events } = setup();
    await runtime.start();
    const a = listener.connect();
    const b = listener.connect();
    const c = listener.connect();
    assert.equal(runtime.sessions, 3);

    await runtime.pause(null);
    assert.equal(listener.mode, 'refusing', 'the listener refuses when pause returns');
    assert.throws(() => listener.connect(), /refused/);
    assert.equal(runtime.state, 'paused');
    assert.equal(runtime.accepting, false);
    const paused = events.find((e) => e.code === EventCode.servicePaused)!;
    assert.equal(paused.data?.sessions, 3);
    assert.equal(runtime.status().drained, false);
    assert.notEqual(runtime.status().drainStartedAt, null);

    listener.hangUp(a);
    listener.hangUp(b);
    await settle();
    assert.equal(count(EventCode.serviceDrained), 0, 'not drained while a session is left');
    assert.equal(runtime.sessions, 1);
    listener.hangUp(c);
    await until(() => count(EventCode.serviceDrained) > 0, 'service.drained');
    await runtime.pause(null); // a repeated pause changes nothing
    await settle();
    assert.equal(count(EventCode.serviceDrained), 1);
    assert.deepEqual(codes(), [EventCode.serviceStarted, EventCode.servicePaused, EventCode.serviceDrained]);
    const status = runtime.status();
    assert.equal(status.sessions, 0);
    assert.equal(status.drained, true);
    assert.equal(status.forced, 0);
    assert.equal(status.accepted, 3);
    assert.ok(status.drainedAt! >= status.drainStartedAt!);
  });

  it('resume accepts again and clears the drain', async () => {
    const { runtime, listener, codes } = setup();
    await runtime.start();
    await runtime.pause(null);
    await until(() => runtime.status().drained, 'drained');
    await runtime.resume();
    assert.equal(runtime.state, 'running');
    assert.equal(listener.mode, 'accepting');
    listener.connect();
    assert.equal(runtime.status().drainStartedAt, null);
    assert.equal(runtime.status().drainedAt, null);
    assert.equal(codes().at(-1), EventCode.serviceResumed);
    await runtime.resume(); // already running: nothing happens
    assert.equal(codes().filter((c) => c === EventCode.serviceResumed).length, 1);
  });

  it('a second drain after resume reports drained again, once', async () => {
    const { runtime, listener, count } = setup();
    await runtime.start();
    await runtime.pause(null);
    await until(() => count(EventCode.serviceDrained) === 1, 'first drained');
    await runtime.resume();
    const s = listener.connect();
    await runtime.pause(null);
    await settle();
    assert.equal(count(EventCode.serviceDrained), 1);
    listener.hangUp(s);
    await until(() => count(EventCode.serviceDrained) === 2, 'second drained');
    await settle();
    assert.equal(count(EventCode.serviceDrained), 2);
  });

  it('graceful stop refuses new, waits for the last session, then stops', async () => {
    const { runtime, listener, codes } = setup();
    await runtime.start();
    const a = listener.connect();
    const b = listener.connect();
    await runtime.stop(true, null);
    assert.equal(runtime.state, 'stopping');
    assert.equal(listener.mode, 'refusing');
    assert.equal(runtime.accepting, false);
    listener.hangUp(a);
    await settle();
    assert.equal(runtime.state, 'stopping');
    listener.hangUp(b);
    await until(() => runtime.state === 'stopped', 'stopped');
    assert.ok(listener.calls.includes('close'));
    assert.deepEqual(codes(), [
      EventCode.serviceStarted,
      EventCode.serviceStopping,
      EventCode.serviceDrained,
      EventCode.serviceStopped,
    ]);
    assert.equal(runtime.status().forced, 0);
    await runtime.start(); // the queue is still usable
    assert.equal(runtime.state, 'running');
  });

  it('graceful stop with no sessions stops at once and the runtime stays usable', async () => {
    const { runtime } = setup();
    await runtime.start();
    await runtime.stop(true, null);
    await until(() => runtime.state === 'stopped', 'stopped', 500);
    // A deadlocked queue would leave this pending; bound it so the suite never hangs.
    const started = await Promise.race([
      runtime.start().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500).unref()),
    ]);
    assert.equal(started, true, 'start after the stop ran');
    assert.equal(runtime.state, 'running');
  });

  it('graceful stop of a paused, already drained service stops', async () => {
    const { runtime, count } = setup();
    await runtime.start();
    await runtime.pause(null);
    await until(() => count(EventCode.serviceDrained) === 1, 'drained');
    await runtime.stop(true, null);
    await until(() => runtime.state === 'stopped', 'stopped', 500);
  });

  it('graceful stop of a paused service with sessions stops when the last one ends', async () => {
    const { runtime, listener, codes } = setup();
    await runtime.start();
    const a = listener.connect();
    await runtime.pause(null);
    await runtime.stop(true, null);
    assert.equal(runtime.state, 'stopping');
    listener.hangUp(a);
    await until(() => runtime.state === 'stopped', 'stopped');
    assert.deepEqual(codes().slice(-2), [EventCode.serviceDrained, EventCode.serviceStopped]);
  });

  it('resume during a graceful stop runs again', async () => {
    const { runtime, listener } = setup();
    await runtime.start();
    listener.connect();
    await runtime.stop(true, null);
    await runtime.resume();
    assert.equal(runtime.state, 'running');
    assert.equal(listener.mode, 'accepting');
  });

  it('hard stop ends every session now and counts each as forced', async () => {
    const { runtime, listeners, events, codes } = setup(2);
    await runtime.start();
    listeners[0]!.connect();
    listeners[0]!.connect();
    listeners[1]!.connect();
    await runtime.stop(false, null);
    assert.equal(runtime.state, 'stopped');
    assert.equal(runtime.sessions, 0);
    const status = runtime.status();
    assert.equal(status.forced, 3);
    assert.equal(status.accepting, false);
    const forced = events.filter((e) => e.code === EventCode.sessionForced);
    assert.equal(forced.length, 1);
    assert.equal(forced[0]!.data?.count, 3);
    assert.equal(forced[0]!.data?.why, 'stop');
    const stopped = events.find((e) => e.code === EventCode.serviceStopped)!;
    assert.equal(stopped.data?.forced, 3);
    assert.equal(codes().at(-1), EventCode.serviceStopped);
    for (const l of listeners) assert.equal(l.mode, 'closed');
  });

  it('hard stop with no sessions emits no session.forced', async () => {
    const { runtime, codes } = setup();
    await runtime.start();
    await runtime.stop(false, null);
    assert.equal(runtime.state, 'stopped');
    assert.deepEqual(codes(), [EventCode.serviceStarted, EventCode.serviceStopped]);
    await runtime.stop(false, null); // already stopped
    assert.deepEqual(codes(), [EventCode.serviceStarted, EventCode.serviceStopped]);
  });

  it('a pause deadline ends the remaining sessions as forced and emits session.forced', async () => {
    const { runtime, listener, events, count } = setup();
    await runtime.start();
    listener.connect();
    const kept = listener.connect();
    listener.hangUp(kept);
    listener.connect();
    await runtime.pause(Date.now() + 40);
    assert.equal(runtime.sessions, 2);
    await until(() => count(EventCode.serviceDrained) === 1, 'drained after the deadline');
    const forced = events.filter((e) => e.code === EventCode.sessionForced);
    assert.equal(forced.length, 1);
    assert.equal(forced[0]!.data?.count, 2);
    assert.equal(forced[0]!.data?.why, 'deadline');
    assert.equal(runtime.state, 'paused', 'a pause deadline leaves the service paused');
    assert.equal(runtime.status().forced, 2);
    assert.equal(events.find((e) => e.code === EventCode.serviceDrained)!.data?.forced, 2);
  });

  it('a deadline weeks away does not fire at once', {}, async () => {
    const { runtime, listener, count } = setup();
    await runtime.start();
    listener.connect();
    await runtime.pause(Date.now() + 30 * 86_400_000); // `--deadline 30d`
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(count(EventCode.sessionForced), 0);
    assert.equal(runtime.sessions, 1);
    await runtime.resume(); // clears the deadline either way
  });

  it('resume before the deadline cancels it', async () => {
    const { runtime, listener, count } = setup();
    await runtime.start();
    listener.connect();
    await runtime.pause(Date.now() + 30);
    await runtime.resume();
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(count(EventCode.sessionForced), 0);
    assert.equal(runtime.sessions, 1);
  });

  it('a graceful-stop deadline forces the rest and stops', async () => {
    const { runtime, listener, events } = setup();
    await runtime.start();
    listener.connect();
    await runtime.stop(true, Date.now() + 30);
    assert.equal(runtime.state, 'stopping');
    await until(() => runtime.state === 'stopped', 'stopped after the deadline');
    assert.equal(runtime.status().forced, 1);
    assert.equal(events.filter((e) => e.code === EventCode.sessionForced).length, 1);
    assert.equal(events.filter((e) => e.code === EventCode.serviceStopped).length, 1);
  });

  it('illegal moves throw InvalidTransitionError and leave the runtime usable', async () => {
    const { runtime } = setup();
    await assert.rejects(runtime.pause(null), (err: unknown) => {
      assert.ok(err instanceof InvalidTransitionError);
      assert.equal(err.code, 'EBB_INVALID_TRANSITION');
      assert.equal(err.httpStatus, 409);
      assert.match(err.message, /fe01\/echo/);
      return true;
    });
    await assert.rejects(runtime.resume(), InvalidTransitionError);
    assert.equal(runtime.state, 'stopped');
    await runtime.start();
    assert.equal(runtime.state, 'running');
  });

  it('a listener that cannot open leaves the service stopped and says why', async () => {
    const { runtime, listeners, codes } = setup(2);
    listeners[1]!.failOpen = new Error('EADDRINUSE');
    await assert.rejects(runtime.start(), /EADDRINUSE/);
    assert.equal(runtime.state, 'stopped');
    assert.equal(runtime.status().error, 'EADDRINUSE');
    assert.ok(listeners[0]!.calls.includes('destroy'), 'the listener that did open is closed again');
    assert.equal(listeners[0]!.mode, 'closed');
    assert.deepEqual(codes(), [EventCode.serviceFailed]);
    listeners[1]!.failOpen = null;
    await runtime.start();
    assert.equal(runtime.state, 'running');
    assert.equal(runtime.status().error, null);
  });

  it('counts upstream failures and accepted sessions in the status', async () => {
    const { runtime, listener } = setup();
    await runtime.start();
    listener.upstreamDown();
    listener.upstreamDown();
    listener.hangUp(listener.connect());
    const status = runtime.status();
    assert.equal(status.upstreamFailures, 2);
    assert.equal(status.accepted, 1);
    assert.equal(status.sessions, 0);
    assert.equal(status.state, 'running');
    assert.equal(status.accepting, true);
    assert.equal(status.drained, false);
  });

  it("status sums the listeners' stats; forced counts from the last start", async () => {
    const { runtime, listeners } = setup(2);
    await runtime.start();
    listeners[0]!.connect();
    listeners[1]!.connect();
    listeners[1]!.hangUp(listeners[1]!.connect());
    let status = runtime.status();
    assert.equal(status.sessions, 2);
    assert.deepEqual(status.sessionsByKind, { fake: 2 });
    assert.equal(status.accepted, 3);
    await runtime.stop(false, null);
    assert.equal(runtime.status().forced, 2);
    await runtime.start();
    status = runtime.status();
    assert.equal(status.forced, 0, 'forced counts since the service last started');
    assert.equal(status.accepted, 3, 'accepted counts since the agent started');
  });

  it('a forced end that fails at the deadline is surfaced: service.failed and the error in status', async () => {
    const { runtime, listener, events, count } = setup();
    await runtime.start();
    listener.connect();
    listener.failEnd = new Error('cannot end');
    await runtime.pause(Date.now() + 10);
    await until(() => count(EventCode.serviceFailed) === 1, 'service.failed');
    const failed = events.find((e) => e.code === EventCode.serviceFailed)!;
    assert.equal(failed.data?.during, 'deadline');
    assert.equal(failed.data?.code, 'EBB_FORCE_END_FAILED');
    assert.match(String(failed.data?.error), /cannot end/);
    assert.match(runtime.status().error ?? '', /cannot end/);
    assert.equal(runtime.state, 'paused');
    listener.failEnd = null;
    await runtime.resume(); // still usable
  });

  it('shutdown destroys every listener, ending its sessions as forced, and says so', async () => {
    const { runtime, listeners, events } = setup(2);
    await runtime.start();
    listeners[0]!.connect();
    listeners[1]!.connect();
    await runtime.shutdown();
    for (const l of listeners) assert.equal(l.mode, 'closed');
    assert.equal(runtime.sessions, 0);
    const forced = events.filter((e) => e.code === EventCode.sessionForced);
    assert.deepEqual(
      forced.map((e) => [e.data?.count, e.data?.why]),
      [[2, 'shutdown']],
    );
  });

  it("a listener's surviving failures reach onListenerError", async () => {
    const { runtime, listener, listenerErrors } = setup();
    await runtime.start();
    listener.acceptFailed(new EbbError('EBB_ACCEPT_FAILED', 'fake: accept failed: EMFILE'));
    assert.deepEqual(
      listenerErrors.map((e) => e.code),
      ['EBB_ACCEPT_FAILED'],
    );
  });

  it('commands apply one at a time, in order', async () => {
    const { runtime, codes } = setup();
    await Promise.all([runtime.start(), runtime.pause(null), runtime.resume(), runtime.stop(false, null)]);
    assert.equal(runtime.state, 'stopped');
    assert.deepEqual(
      codes().filter((c) => c !== EventCode.serviceDrained),
      [EventCode.serviceStarted, EventCode.servicePaused, EventCode.serviceResumed, EventCode.serviceStopped],
    );
  });
});
