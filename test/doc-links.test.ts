import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const docs = [
  'README.md',
  'ARCHITECTURE.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Operator audit #27: every relative link in the docs works in any clone, the SPEC's included. */
describe('docs links', () => {
  it('every relative link in README, ARCHITECTURE and docs/ points into the repository, at a file that exists', () => {
    const broken: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(root, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:|^#/.test(target!)) continue;
        const path = resolve(root, dirname(doc), target!.split('#')[0]!);
        if (!path.startsWith(`${root}/`) || !existsSync(path)) broken.push(`${doc}: ${target}`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('docs/SPEC.md is the contract kept beside the project, when that is there', (t) => {
    const shared = resolve(root, '..', 'shared', 'SPEC.md');
    if (!existsSync(shared)) return t.skip('no ../shared/SPEC.md beside this clone');
    assert.equal(readFileSync(join(root, 'docs', 'SPEC.md'), 'utf8'), readFileSync(shared, 'utf8'));
  });
});
