import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { PoolStatus } from '../src/control/index.ts';
import { ConsoleBrowser, ensureConsoleBuilt } from './harness/browser.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { poolYaml, testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

/**
 * The console of a pool with `api.tokens` (operator audit #4): a token prompt instead of "the API does
 * not answer", the token kept in the tab's sessionStorage only, a viewer refused a pause in words, an
 * operator allowed it, and a way to forget the token. `ebb up` in its own process, Chromium headless.
 */
describe('web console with API tokens in Chromium', () => {
  const ws = new Workspace('ebb-console-tokens-');
  const shots = mkdtempSync(join(tmpdir(), 'ebb-console-tokens-shots-'));
  const tokens = {
    EBB_T_VIEW: `view-${Math.random().toString(36).slice(2)}-token`,
    EBB_T_OPS: `ops-${Math.random().toString(36).slice(2)}-token`,
  };
  let pool: TestPool;
  let config: string;
  let server: EbbServer;
  let browser: ConsoleBrowser;
  let page: Page;
  const status = async () =>
    JSON.parse(
      (await runEbb(['--config', config, 'status', '--json'], { env: { EBB_TOKEN: tokens.EBB_T_VIEW } }))
        .stdout,
    ) as PoolStatus;
  const stateOf = (s: PoolStatus, member: string, service: string) =>
    s.members.find((m) => m.id === member)!.services.find((x) => x.id === service)!.state;
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const prompt = () => page.getByLabel('API token');
  const enterToken = async (token: string) => {
    await prompt().fill(token);
    await page.getByRole('button', { name: 'Use token' }).click();
  };
  /** Whatever the page keeps: its address, its localStorage, its sessionStorage. */
  const kept = () =>
    page.evaluate(() => ({
      url: location.href,
      local: JSON.stringify({ ...localStorage }),
      session: sessionStorage.getItem('ebb-token'),
    }));

  before(async () => {
    ensureConsoleBuilt();
    const portBase = await freePortRange(32);
    pool = testPool({
      portBase,
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'alpha' }, { id: 'beta' }],
      dnsPort: portBase + 30,
    });
    pool.config.api = {
      ...pool.config.api,
      tokens: [
        { name: 'watcher', role: 'viewer', token: 'env:EBB_T_VIEW' },
        { name: 'ops', role: 'operator', token: 'env:EBB_T_OPS' },
      ],
    };
    config = ws.file('pool.yaml', poolYaml(pool.config));
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir, env: tokens });
    browser = await ConsoleBrowser.launch({ width: 1280, height: 800 });
    page = await browser.open(pool.apiUrl);
  });

  after(async () => {
    console.log(`# console screenshots: ${shots}`);
    await browser?.close();
    await server?.stop('SIGTERM');
    ws.cleanup();
  });

  it('asks for a token (a password field) instead of "the API does not answer"', async () => {
    await prompt().waitFor({ timeout: 10_000 });
    assert.equal(await prompt().getAttribute('type'), 'password');
    assert.equal(await page.getByText('The API does not answer').count(), 0);
    await page.locator('[data-connection="unauthorised"]').waitFor();
    await shot('01-token-prompt');
  });

  it('a token the API does not know is refused in the prompt and not kept', async () => {
    await enterToken('not-a-real-token-at-all');
    await page.getByRole('alert').filter({ hasText: 'That token was not accepted (401)' }).waitFor();
    assert.equal((await kept()).session, null);
  });

  it('a viewer token shows the pool, live (the event stream takes the query token)', async () => {
    await enterToken(tokens.EBB_T_VIEW);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    await page
      .locator('tbody[data-member="m1"] tr[data-service="alpha"] td[data-col="state"]', {
        hasText: 'Running',
      })
      .waitFor();
    const { url, local, session } = await kept();
    assert.equal(session, tokens.EBB_T_VIEW, 'kept in sessionStorage');
    assert.ok(!url.includes(tokens.EBB_T_VIEW) && !url.includes('token'), `not in the address bar: ${url}`);
    assert.ok(!local.includes(tokens.EBB_T_VIEW), 'never in localStorage');
    // The audit log is read with the token too (no commands yet).
    await page.locator('.audit-card', { hasText: 'No commands yet.' }).waitFor({ timeout: 10_000 });
  });

  it('the token survives a reload of the tab, without a prompt', async () => {
    await page.reload({ waitUntil: 'load' });
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    assert.equal(await prompt().count(), 0);
  });

  it('a pause with the viewer token is refused in plain words, and nothing changes', async () => {
    await page.getByRole('button', { name: 'Pause m1', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Pause m1', exact: true }).click();
    const alert = dialog.getByRole('alert');
    await alert.waitFor({ timeout: 10_000 });
    const text = await alert.innerText();
    assert.match(text, /Not allowed with your token \(403\)/);
    assert.match(text, /Your token \(viewer\) may not pause: needs operator\./);
    await shot('02-viewer-refused');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(stateOf(await status(), 'm1', 'alpha'), 'running');
  });

  it('Forget token removes it and asks again; an operator token then pauses', async () => {
    await page.getByRole('button', { name: 'Forget token' }).click();
    await prompt().waitFor({ timeout: 10_000 });
    assert.equal((await kept()).session, null);
    assert.equal(
      await page.locator('tbody[data-member]').count(),
      0,
      'nothing read with the old token stays',
    );

    await enterToken(tokens.EBB_T_OPS);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Pause m1/alpha', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel(/Reason/).fill('console tokens test');
    await dialog.getByRole('button', { name: 'Pause m1/alpha', exact: true }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 15_000 });
    await page
      .locator('tbody[data-member="m1"] tr[data-service="alpha"] td[data-col="state"]', { hasText: 'Paused' })
      .waitFor({ timeout: 10_000 });
    assert.equal(stateOf(await status(), 'm1', 'alpha'), 'paused');
    await page
      .locator('tr[data-audit-result="ok"]', { hasText: 'console tokens test' })
      .waitFor({ timeout: 10_000 });
    assert.match(
      await page.locator('tr[data-audit-result="ok"]', { hasText: 'console tokens test' }).innerText(),
      /ops/,
      'audited as the operator token',
    );
    await shot('03-operator-paused');
  });

  it('had no page errors but the expected 401s and 403', () => {
    const unexpected = browser.errors.filter((e) => !/status of 40[13] \((Unauthorized|Forbidden)\)/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
