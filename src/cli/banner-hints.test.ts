import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { validateConfig, type ConfigInput } from '../config/index.ts';
import type { PoolStatus } from '../control/index.ts';
import { bannerHints, restoredLines } from './banner-hints.ts';

const pool = (api?: ConfigInput['api']) =>
  validateConfig({
    pool: { name: 'tok', fqdn: 'tok.ebb.test' },
    ...(api ? { api } : {}),
    members: [
      {
        id: 'a1',
        address: '127.0.0.21',
        services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }] }],
      },
    ],
  });

describe('ebb up banner hints (audit #13)', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'ebb-hints-'));
  after(() => rmSync(cwd, { recursive: true, force: true }));
  const saved = process.env['EBB_CONFIG'];
  delete process.env['EBB_CONFIG'];
  after(() => {
    if (saved !== undefined) process.env['EBB_CONFIG'] = saved;
  });

  it('the demo (API on 127.0.0.1:7070, no ./ebb.yaml): commands as they are', () => {
    const hints = bannerHints(pool(), 'examples/demo.yaml', cwd);
    assert.ok(hints.includes('  npx ebb status'), hints.join('\n'));
    assert.ok(hints.some((h) => h.startsWith('  npx ebb pause a1 ')));
    assert.ok(!hints.some((h) => h.includes('EBB_TOKEN')));
  });

  it('another API address, or tokens: --config FILE and the variable to export', () => {
    const hints = bannerHints(
      pool({
        listen: '127.0.0.1:7171',
        tokens: [{ name: 'ops', role: 'operator', token: 'env:EBB_OPS_TOKEN' }],
      }),
      'my pools/tok.yaml',
      cwd,
    );
    assert.ok(hints.includes(`  npx ebb --config 'my pools/tok.yaml' status`), hints.join('\n'));
    assert.ok(hints.some((h) => h.startsWith(`  npx ebb --config 'my pools/tok.yaml' drain a1`)));
    assert.ok(hints.some((h) => h.startsWith('  export EBB_TOKEN="$EBB_OPS_TOKEN"')));
  });

  it('a ./ebb.yaml that is another file than the one running: --config', () => {
    writeFileSync(join(cwd, 'ebb.yaml'), 'pool: {}\n');
    assert.ok(bannerHints(pool(), 'demo.yaml', cwd).includes('  npx ebb --config demo.yaml status'));
    assert.ok(bannerHints(pool(), 'ebb.yaml', cwd).includes('  npx ebb status'));
  });
});

describe('ebb up banner: what came back paused (audit #39)', () => {
  it('a line per member and intent, with reason, who and since; defaults from the config are no news', () => {
    const at = Date.UTC(2026, 11, 1, 11, 2, 3);
    const service = (id: string, fields: Record<string, unknown>) => ({
      id,
      intent: 'running',
      intentBy: 'config',
      intentAt: null,
      reason: '',
      ...fields,
    });
    const paused = { intent: 'paused', intentBy: 'ops', intentAt: at, reason: 'kill test\x1b[2J' };
    const status = {
      pool: { name: 'p', fqdn: 'p.ebb.test', minAccepting: 1 },
      members: [
        { id: 'fe01', services: [service('a', paused), service('b', paused)] },
        { id: 'fe02', services: [service('a', {}), service('b', { intent: 'stopped', intentBy: 'config' })] },
        { id: 'fe03', services: [service('a', { intent: 'stopped', intentBy: 'admin', intentAt: at })] },
      ],
    } as unknown as PoolStatus;
    assert.deepEqual(restoredLines(status), [
      'fe01: 2 services come back paused ("kill test\\u001b[2J", by ops since 2026-12-01 11:02:03 UTC)',
      'fe03: 1 service comes back stopped (by admin since 2026-12-01 11:02:03 UTC)',
    ]);
  });
});
