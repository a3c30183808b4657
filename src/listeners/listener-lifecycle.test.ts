import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidTransitionError } from '../core/index.ts';
import { ListenerLifecycle, type ListenerDriver } from './listener-lifecycle.ts';

/** A driver with sessions held by hand; it records the steps the lifecycle takes. */
function fakeDriver() {
  const steps: string[] = [];
  const state = { sessions: 0, failBind: null as Error | null, failRelease: null as Error | null };
  let finishGoodbyes: () => void = () => {};
  const driver: ListenerDriver = {
    bind: async (refusing) => {
      steps.push(`bind(${refusing})`);
      if (state.failBind) throw state.failBind;
    },
    refuse: async () => void steps.push('refuse'),
    accept: async () => void steps.push('accept'),
    stopListening: async () => void steps.push('stopListening'),
    endSessions: () => {
      steps.push('endSessions');
      const ended = state.sessions;
      state.sessions = 0; // counted as ended at once, as SIP does …
      life.sessionsChanged();
      // … while the goodbyes are still on their way out.
      return new Promise<number>((resolve) => (finishGoodbyes = () => resolve(ended)));
    },
    release: async () => {
      steps.push('release');
      if (state.failRelease) throw state.failRelease;
    },
    sessions: () => state.sessions,
  };
  const life = new ListenerLifecycle('fake 127.0.0.1:1', driver);
  const hangUp = () => {
    state.sessions--;
    life.sessionsChanged();
  };
  return { life, steps, state, hangUp, goodbyesOut: () => finishGoodbyes() };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ListenerLifecycle', () => {
  it('follows the table: closed → accepting ⇄ refusing → closing → closed', async () => {
    const { life, steps } = fakeDriver();
    assert.equal(life.state, 'closed');
    await life.open(false);
    assert.equal(life.state, 'accepting');
    await life.open(false); // idempotent
    await life.refuse();
    await life.refuse(); // idempotent
    assert.equal(life.state, 'refusing');
    await life.accept();
    assert.equal(life.state, 'accepting');
    await life.close();
    assert.equal(life.state, 'closed');
    await life.open(true);
    assert.equal(life.state, 'refusing');
    assert.deepEqual(steps, ['bind(false)', 'refuse', 'accept', 'stopListening', 'release', 'bind(true)']);
  });

  it('illegal moves reject with InvalidTransitionError and change nothing', async () => {
    const { life, state, goodbyesOut } = fakeDriver();
    await assert.rejects(life.refuse(), InvalidTransitionError);
    await assert.rejects(life.accept(), InvalidTransitionError);
    await life.open(true);
    await assert.rejects(life.open(false), /cannot go from refusing to accepting/);
    state.sessions = 1;
    const closing = life.close();
    await settle();
    assert.equal(life.state, 'closing');
    await assert.rejects(life.accept(), InvalidTransitionError);
    await assert.rejects(life.refuse(), InvalidTransitionError);
    await assert.rejects(life.open(false), InvalidTransitionError);
    assert.equal(life.state, 'closing');
    const destroying = life.destroy();
    await settle();
    goodbyesOut();
    assert.equal(await destroying, 1);
    await closing;
  });

  it('a bind that fails leaves it closed and usable', async () => {
    const { life, state } = fakeDriver();
    state.failBind = new Error('EADDRINUSE');
    await assert.rejects(life.open(false), /EADDRINUSE/);
    assert.equal(life.state, 'closed');
    state.failBind = null;
    await life.open(false);
    assert.equal(life.state, 'accepting');
  });

  it('close() waits for the sessions to end by themselves; the same promise however often', async () => {
    const { life, state, hangUp, steps } = fakeDriver();
    await life.open(false);
    state.sessions = 2;
    let done = false;
    const closing = life.close();
    void closing.then(() => (done = true));
    assert.equal(life.close(), closing);
    await settle();
    assert.equal(life.state, 'closing');
    hangUp();
    await settle();
    assert.equal(done, false);
    hangUp();
    await closing;
    assert.equal(life.state, 'closed');
    assert.equal(life.close(), closing, 'still the same once closed');
    assert.ok(!steps.includes('endSessions'), 'nothing was ended');
  });

  it('destroy() during a pending close ends what is left; the sockets go only once the goodbyes are out', async () => {
    const { life, state, steps, goodbyesOut } = fakeDriver();
    await life.open(false);
    state.sessions = 3;
    const closing = life.close();
    await settle();
    const destroying = life.destroy();
    assert.equal(life.destroy(), destroying, 'the same promise');
    await settle();
    assert.equal(state.sessions, 0);
    assert.ok(!steps.includes('release'), 'not released while the goodbyes are on their way');
    goodbyesOut();
    assert.equal(await destroying, 3);
    await closing;
    assert.deepEqual(steps.slice(-3), ['stopListening', 'endSessions', 'release']);
  });

  it('close and destroy of a closed listener resolve at once; after open again they act again', async () => {
    const { life, state, goodbyesOut } = fakeDriver();
    await life.close();
    assert.equal(await life.destroy(), 0);
    const first = life.close();
    await life.open(false);
    state.sessions = 1;
    const again = life.destroy();
    assert.notEqual(life.close(), first, 'a new cycle, a new close');
    await settle();
    goodbyesOut();
    assert.equal(await again, 1);
    assert.equal(life.state, 'closed');
  });

  it('a release that fails still ends closed, and the close says why', async () => {
    const { life, state } = fakeDriver();
    await life.open(false);
    state.failRelease = new Error('socket close failed');
    await assert.rejects(life.close(), /socket close failed/);
    assert.equal(life.state, 'closed');
  });
});
