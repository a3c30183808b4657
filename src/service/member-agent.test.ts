/**
 * MemberAgent's boot when the store is out of reach (SPEC §3), over a real SQLite store behind a switch
 * that makes every call fail, and a real TCP listener on a loopback alias.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../config/index.ts';
import { StoreError, defaultIntent, type PoolView } from '../core/index.ts';
import { PoolKeys, SqliteStore, type Store } from '../store/index.ts';
import { LocalIntents } from './local-intents.ts';
import { MemberAgent } from './member-agent.ts';

const address = `127.0.${100 + Math.floor(Math.random() * 150)}.${2 + Math.floor(Math.random() * 200)}`;
const port = 20_000 + Math.floor(Math.random() * 30_000);

/** A store whose every call fails while `down` is true, as when the network to it is gone. */
function switchable(store: Store): { store: Store; setDown: (down: boolean) => void } {
  let down = true;
  const wrapped = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function' || name === 'close') return value;
      return (...args: unknown[]) => {
        if (down) return Promise.reject(new StoreError('store unreachable (test switch)'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: wrapped, setDown: (d) => (down = d) };
}

function tryConnect(): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what}: not within 200 polls`);
}

describe('MemberAgent boot with the store out of reach', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-agent-'));
  const config = validateConfig({
    pool: { name: 'boot', fqdn: 'boot.ebb.test' },
    store: `sqlite:${join(dir, 'state.db')}`,
    agent: { localState: join(dir, 'local') },
    members: [
      {
        id: 'm1',
        address,
        services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port, upstream: 'builtin:echo' }] }],
      },
    ],
  });
  const real = new SqliteStore(join(dir, 'state.db'));
  const { store, setDown } = switchable(real);
  const view = (): PoolView => ({ name: 'boot', fqdn: 'boot.ebb.test', dnsTtl: 5, members: [] });
  const agent = new MemberAgent({ config, member: 'm1', store, logger: pino({ level: 'silent' }), view });

  after(async () => {
    await agent.stop();
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a corrupt local copy is not read as "no intents": the service waits for the store, then comes back paused', async () => {
    const local = new LocalIntents(config.agent.localState, 'boot', 'm1');
    writeFileSync(local.path, '{"echo": {"intent": {"run": "pau');
    const keys = new PoolKeys('boot');
    const paused = { ...defaultIntent('automatic'), run: 'paused' as const, reason: 'before the crash' };
    await real.put(keys.intent('m1', 'echo'), JSON.stringify(paused));

    await agent.start();
    assert.equal(agent.runtime('echo')!.state, 'stopped', 'nothing is known: the service does not start');
    assert.equal(await tryConnect(), 'ECONNREFUSED');

    setDown(false);
    await until(
      () => agent.runtime('echo')!.state === 'paused',
      'echo comes up paused once the store answers',
    );
    assert.equal(await tryConnect(), 'ECONNREFUSED', 'paused: it refuses');
    assert.equal(local.read().get('echo')?.intent.run, 'paused', 'the local copy is whole again');
  });
});

describe('MemberAgent finding its store replaced while it served from its local copy (issue 16, fault 4)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-agent-replaced-'));
  const replacedPort = port + 1;
  const config = validateConfig({
    pool: { name: 'replaced', fqdn: 'replaced.ebb.test' },
    store: `sqlite:${join(dir, 'state.db')}`,
    agent: { localState: join(dir, 'local') },
    members: [
      {
        id: 'm1',
        address,
        services: [
          { id: 'echo', listeners: [{ protocol: 'tcp', port: replacedPort, upstream: 'builtin:echo' }] },
        ],
      },
    ],
  });
  const real = new SqliteStore(join(dir, 'state.db'));
  const { store, setDown } = switchable(real);
  const view = (): PoolView => ({ name: 'replaced', fqdn: 'replaced.ebb.test', dnsTtl: 5, members: [] });
  const agent = new MemberAgent({ config, member: 'm1', store, logger: pino({ level: 'silent' }), view });
  const keys = new PoolKeys('replaced');
  const connects = () =>
    new Promise<string>((resolve) => {
      const socket = connect({ host: address, port: replacedPort });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });

  after(async () => {
    await agent.stop();
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the pause, writes it into the new store, and follows that store’s revisions from then on', async () => {
    const local = new LocalIntents(config.agent.localState, 'replaced', 'm1');
    const paused = { ...defaultIntent('automatic'), run: 'paused' as const, reason: 'old store', by: 'ops' };
    // Revision 500 of a store that is gone; the new one starts again from 1.
    local.write(new Map([['echo', { intent: paused, revision: 500 }]]), 'the-old-store');

    await agent.start();
    assert.equal(agent.runtime('echo')!.state, 'paused', 'from the local copy');
    setDown(false);
    await until(
      async () => (await real.get(keys.intent('m1', 'echo')))?.value.includes('agent-kept') === true,
      'kept intent written',
    );
    assert.equal(agent.runtime('echo')!.state, 'paused');
    assert.equal(await connects(), 'ECONNREFUSED');
    assert.equal(
      local.readCopy().storeIdentity,
      await real.identity(),
      'the copy belongs to the new store now',
    );

    // An operator resumes in the new store, at a revision far below the old 500: it is applied.
    const running = { ...paused, run: 'running' as const, reason: '', by: 'ops' };
    const revision = await real.put(keys.intent('m1', 'echo'), JSON.stringify(running));
    assert.ok(revision < 500);
    await until(() => agent.runtime('echo')!.state === 'running', 'resumed');
    await until(async () => {
      const status = await real.get(keys.status('m1', 'echo'));
      return (
        status !== undefined &&
        (JSON.parse(status.value) as { intentRevision: number }).intentRevision === revision
      );
    }, 'status confirms the new store’s revision');
    assert.equal(await connects(), 'connected');
  });
});
