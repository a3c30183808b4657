import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../config/index.ts';
import { PoolRunner } from './pool-runner.ts';

describe('PoolRunner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-runner-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts and stops a runner with no parts on `store`; returns what it logged. */
  async function runOnce(store: string): Promise<Array<{ code?: string; path?: string; msg: string }>> {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const config = validateConfig({
      pool: { name: 'runner', fqdn: 'runner.ebb.test' },
      store,
      agent: { localState: join(dir, 'local') },
      members: [
        {
          id: 'm1',
          address: '127.0.0.1',
          services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port: 1, upstream: 'builtin:echo' }] }],
        },
      ],
    });
    const runner = new PoolRunner({ config, logger, agents: [], api: false, dns: false });
    await runner.start();
    await runner.stop();
    return lines.map((l) => JSON.parse(l) as { code?: string; path?: string; msg: string });
  }

  it('says loudly when it creates a new, empty store (a typo in store: would lose every pause)', async () => {
    const path = join(dir, 'typo', 'state.db');
    const first = await runOnce(`sqlite:${path}`);
    const warning = first.find((l) => l.code === 'EBB_NEW_STORE');
    assert.ok(warning, 'a warning with a code');
    assert.equal(warning.path, path);
    assert.match(warning.msg, /new, empty store/);
    const second = await runOnce(`sqlite:${path}`);
    assert.equal(
      second.find((l) => l.code === 'EBB_NEW_STORE'),
      undefined,
      'an existing store is not new',
    );
  });

  it('leaves mode embedded services to their servers: no agent for a member that has only those', async () => {
    const config = validateConfig({
      pool: { name: 'embedded', fqdn: 'embedded.ebb.test' },
      store: `sqlite:${join(dir, 'embedded.db')}`,
      agent: { localState: join(dir, 'embedded-local') },
      members: [
        {
          id: 'm1',
          address: '127.0.0.1',
          services: [{ id: 'chat', listeners: [{ protocol: 'http', mode: 'embedded', port: 1 }] }],
        },
      ],
    });
    const logger = pino({ level: 'silent' });
    const all = new PoolRunner({ config, logger, api: false, dns: false });
    await all.start(); // port 1 is never bound: nothing of m1 runs here
    assert.equal(all.agents.length, 0);
    await all.stop();
    const named = new PoolRunner({ config, logger, agents: ['m1'], api: false, dns: false });
    await assert.rejects(named.start(), {
      code: 'EBB_EMBEDDED_MEMBER',
      message: /the server that embeds Ebb/,
    });
  });
});
