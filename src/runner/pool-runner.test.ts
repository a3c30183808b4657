import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createServer, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { EbbError } from '../core/index.ts';
import { validateConfig } from '../config/index.ts';
import { PoolRunner } from './pool-runner.ts';

describe('PoolRunner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-runner-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function configFor(store: string) {
    return validateConfig({
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
  }

  /** Starts and stops a runner with no parts on `store`; returns what it logged. */
  async function runOnce(store: string): Promise<Array<{ code?: string; path?: string; msg: string }>> {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const config = configFor(store);
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

  it('a DNS port already taken says how to choose another (operator audit #21)', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    const config = configFor(`sqlite:${join(dir, 'dns.db')}`);
    const runner = new PoolRunner({
      config,
      logger: pino({ level: 'silent' }),
      agents: [],
      api: false,
      dns: { listen: `127.0.0.1:${port}` },
    });
    try {
      await assert.rejects(runner.start(), (err: EbbError) => {
        assert.equal(err.code, 'EBB_LISTEN_FAILED');
        assert.match(err.message, /EADDRINUSE/);
        assert.match(
          err.message,
          /set dns\.listen in the config to a free port .*ebb dns --listen HOST:PORT/,
        );
        return true;
      });
    } finally {
      await runner.stop();
      taken.close();
    }
  });

  it('an API or DNS without its store at start says that the agent alone would start (operator audit #40)', async () => {
    const config = configFor('etcd://127.0.0.1:9');
    // A reader (here the DNS) needs the store; an agent alone does not.
    const reader = new PoolRunner({
      config,
      logger: pino({ level: 'silent' }),
      agents: [],
      api: false,
      dns: { listen: '127.0.0.1:0' },
    });
    try {
      await assert.rejects(reader.start(), (err: EbbError) => {
        assert.equal(err.code, 'EBB_STORE_UNAVAILABLE');
        assert.match(
          err.message,
          /the API and DNS need the store at start.*`ebb agent --member ID` starts from its local copy/,
        );
        return true;
      });
    } finally {
      await reader.stop();
    }
  });
});
