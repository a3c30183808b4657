import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultIntent } from '../core/index.ts';
import { LocalIntents, LocalStateError } from './local-intents.ts';

describe('LocalIntents: the agent’s own copy of its intents (SPEC §3)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-local-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads back what it wrote; no copy yet reads as empty', () => {
    const local = new LocalIntents(dir, 'pool', 'fresh');
    assert.equal(local.read().size, 0);
    const paused = { ...defaultIntent('automatic', 1), run: 'paused' as const };
    local.write(new Map([['echo', { intent: paused, revision: 7 }]]));
    assert.deepEqual(local.read().get('echo'), { intent: paused, revision: 7 });
  });

  it('keeps the identity of the store its intents came from; a copy written before that names none', () => {
    const local = new LocalIntents(dir, 'pool', 'named');
    const paused = { ...defaultIntent('automatic', 1), run: 'paused' as const };
    local.write(new Map([['echo', { intent: paused, revision: 7 }]]), 'store-1');
    assert.equal(local.readCopy().storeIdentity, 'store-1');
    assert.deepEqual([...local.read().keys()], ['echo']);
    writeFileSync(local.path, JSON.stringify({ echo: { intent: paused, revision: 7 } }));
    assert.equal(local.readCopy().storeIdentity, null);
    assert.equal(local.read().get('echo')?.revision, 7);
  });

  for (const [what, text] of [
    ['truncated JSON', '{"echo": {"intent": {"run": "pa'],
    ['not an object', '[1, 2]'],
    ['an entry that is not an intent', '{"echo": {"intent": {"run": "sideways"}, "revision": 3}}'],
    ['an entry without a revision', `{"echo": {"intent": ${JSON.stringify(defaultIntent('automatic', 1))}}}`],
    ['a store identity that is not a string', '{"$store": 7}'],
  ] as const) {
    it(`a corrupt copy (${what}) throws instead of reading as "no intents", and is copied aside`, () => {
      const member = `bad-${what.replace(/\W+/g, '-')}`;
      const local = new LocalIntents(dir, 'pool', member);
      writeFileSync(local.path, text);
      assert.throws(
        () => local.read(),
        (err: unknown) => err instanceof LocalStateError && err.code === 'EBB_LOCAL_STATE_CORRUPT',
      );
      assert.ok(
        readdirSync(dir).some((f) => f.startsWith(`pool-${member}.json.corrupt-`)),
        'a copy of the bad file is kept for the operator',
      );
    });
  }
});
