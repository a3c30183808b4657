import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createApiApp } from './api-app.ts';
import { apiBase, InMemoryPool } from './api-test-support.ts';

describe('the web console, served from its build', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-console-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><title>Ebb</title><script src="/assets/app-1a2b.js"></script>',
  );
  writeFileSync(join(dir, 'assets/app-1a2b.js'), 'console.log(1)');
  writeFileSync(join(dir, 'assets/app-1a2b.css'), 'body{}');
  writeFileSync(join(dir, 'secret.txt'), 'not an asset');
  const pool = new InMemoryPool();
  const app = createApiApp({ state: pool.state, controller: pool.controller }, { consoleDir: dir });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await pool.close();
  });

  it('serves index.html at / with a strict content security policy', async () => {
    const res = await app.request(`${apiBase}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'.*connect-src 'self'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await res.text(), /<title>Ebb<\/title>/);
  });

  it('serves hashed bundles with their content type, cached for good', async () => {
    const js = await app.request(`${apiBase}/assets/app-1a2b.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(await js.text(), 'console.log(1)');
    const css = await app.request(`${apiBase}/assets/app-1a2b.css`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  });

  it('serves nothing outside the assets folder, and unknown files are 404', async () => {
    for (const path of [
      '/assets/..%2Fsecret.txt',
      '/assets/%2e%2e%2fsecret.txt',
      '/assets/../secret.txt',
      '/assets/missing.js',
      '/assets/app-1a2b.exe',
      '/secret.txt',
    ]) {
      const res = await app.request(`${apiBase}${path}`);
      assert.equal(res.status, 404, path);
      assert.doesNotMatch(await res.text(), /not an asset/, path);
    }
  });

  it('the API routes are untouched', async () => {
    assert.equal((await app.request(`${apiBase}/healthz`)).status, 200);
    const missing = await app.request(`${apiBase}/v1/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'EBB_NOT_FOUND');
  });

  it('a missing build is a clear 503 page, not a crash', async () => {
    const bare = createApiApp(
      { state: pool.state, controller: pool.controller },
      { consoleDir: join(dir, 'nowhere') },
    );
    const res = await bare.request(`${apiBase}/`);
    assert.equal(res.status, 503);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await res.text(), /console is not built[\s\S]*npm run build:console/);
    assert.equal((await bare.request(`${apiBase}/assets/app.js`)).status, 404);
  });
});
