import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from './store-conformance.ts';
import { SqliteStore } from './sqlite-store.ts';

runStoreConformance('sqlite (one file, several connections)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-sqlite-'));
  const path = join(dir, 'state.db');
  return {
    open: async () => new SqliteStore(path),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
