import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { PoolStatus } from '../src/control/index.ts';
import { ConsoleBrowser, ensureConsoleBuilt } from './harness/browser.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { closeSocket, openSocket } from './harness/tcp-sessions.ts';

/**
 * The web console as an operator meets it: `ebb up` in its own process, the console in headless
 * Chromium, real TCP sessions held by the test, and `ebb status` to check what the page says.
 * Pool: 3 members × 2 tcp echo services (alpha, beta); the capacity guard keeps 1 member accepting.
 */
describe('web console in Chromium', () => {
  const ws = new Workspace('ebb-console-');
  let pool: TestPool;
  let config: string;
  let server: EbbServer;
  let browser: ConsoleBrowser;
  let page: Page;
  const held = new Map<string, Socket[]>();
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const status = async () => JSON.parse((await ebb('status', '--json')).stdout) as PoolStatus;
  const serviceOf = (s: PoolStatus, member: string, id: string) =>
    s.members.find((m) => m.id === member)!.services.find((x) => x.id === id)!;

  const row = (member: string, service: string) =>
    page.locator(`tbody[data-member="${member}"] tr[data-service="${service}"]`);
  const cell = (member: string, service: string, col: string) =>
    row(member, service).locator(`td[data-col="${col}"]`);
  /** Waits until the cell's text is exactly `text`, as the live page shows it. */
  const cellShows = (member: string, service: string, col: string, text: string) =>
    page
      .locator(`tbody[data-member="${member}"] tr[data-service="${service}"] td[data-col="${col}"]`, {
        hasText: new RegExp(`^\\s*${text}\\s*$`),
      })
      .waitFor({ timeout: 10_000 });
  const hold = async (member: string, service: string, count: number) => {
    const m = pool.members.find((x) => x.id === member)!;
    const sockets = held.get(`${member}/${service}`) ?? [];
    for (let i = 0; i < count; i++) sockets.push(await openSocket(m.address, m.ports[service]!));
    held.set(`${member}/${service}`, sockets);
  };
  const release = async (member: string, service: string) => {
    for (const socket of held.get(`${member}/${service}`)?.splice(0) ?? []) await closeSocket(socket);
  };

  before(async () => {
    ensureConsoleBuilt();
    const portBase = await freePortRange(32);
    pool = testPool({
      portBase,
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'alpha' }, { id: 'beta' }],
      // Its own DNS port (the last but one of the range; the API has the last), not the default 5300.
      dnsPort: portBase + 30,
    });
    config = ws.file('pool.yaml', pool.yaml);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    browser = await ConsoleBrowser.launch();
    page = await browser.open(pool.apiUrl);
  });

  after(async () => {
    for (const sockets of held.values()) for (const socket of sockets) socket.destroy();
    await browser?.close();
    await server?.stop('SIGTERM');
    ws.cleanup();
  });

  it('shows every member and service of the pool, live', async () => {
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    for (const member of ['m1', 'm2', 'm3']) {
      for (const service of ['alpha', 'beta']) {
        await row(member, service).waitFor();
        assert.equal((await cell(member, service, 'state').innerText()).trim(), 'Running');
        assert.equal((await cell(member, service, 'accepting').innerText()).trim(), 'Yes');
        assert.equal((await cell(member, service, 'startup').innerText()).trim(), 'automatic');
      }
    }
    assert.match(await page.locator('.topbar').innerText(), new RegExp((await status()).pool.name));
    await browser.screenshot(page, '01-pool');
  });

  it('session counts appear as clients connect, without a reload', async () => {
    await page.evaluate(() => Object.assign(window, { ebbNoReload: true }));
    await hold('m1', 'alpha', 6);
    await hold('m1', 'beta', 2);
    await hold('m2', 'alpha', 3);
    await cellShows('m1', 'alpha', 'sessions', '6');
    await cellShows('m1', 'beta', 'sessions', '2');
    await cellShows('m2', 'alpha', 'sessions', '3');
    assert.equal(await page.evaluate(() => 'ebbNoReload' in window), true, 'the page was not reloaded');
    await browser.screenshot(page, '02-sessions');
  });

  it('Pause next to a member asks for confirmation naming it, and ebb status agrees', async () => {
    await page.getByRole('button', { name: 'Pause m1', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.equal((await dialog.getByRole('heading').innerText()).trim(), 'Pause m1?');
    assert.match(await dialog.innerText(), /every service of m1 \(alpha, beta\)/);
    assert.match(await dialog.innerText(), /8 sessions in progress will be left to end/);
    await dialog.getByLabel(/Reason/).fill('console test: patching');
    await browser.screenshot(page, '03-pause-dialog', { fullPage: false });
    await dialog.getByRole('button', { name: 'Pause m1', exact: true }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 15_000 });

    const s = await status();
    assert.equal(serviceOf(s, 'm1', 'alpha').state, 'paused');
    assert.equal(serviceOf(s, 'm1', 'beta').state, 'paused');
    assert.equal(serviceOf(s, 'm2', 'alpha').state, 'running');
    await cellShows('m1', 'alpha', 'state', 'Paused');
    await cellShows('m1', 'beta', 'state', 'Paused');
    await cellShows('m1', 'alpha', 'accepting', 'No');
    await cellShows('m1', 'alpha', 'sessions', '6');
    // Who paused it, when and why, in the row.
    assert.match(
      await row('m1', 'alpha').locator('[data-intent-note]').innerText(),
      /^paused by local at \d{4}-\d{2}-\d{2} [\d:]+: console test: patching$/,
    );
    assert.equal((await cell('m1', 'alpha', 'drained').innerText()).trim(), '—');
    await page
      .locator('tbody[data-member="m1"] .member-row', { hasText: 'Draining · 8 sessions left' })
      .waitFor();
    await page.locator('svg[data-chart-member="m1"]').waitFor();
    await page.locator('.events li', { hasText: 'service.paused' }).first().waitFor();
    const audit = page.locator('tr[data-audit-result="ok"]', { hasText: 'console test: patching' });
    await audit.waitFor({ timeout: 10_000 });
    await browser.screenshot(page, '04-draining');

    const metrics = await (await fetch(`${pool.apiUrl}/metrics`)).text();
    assert.match(metrics, /^ebb_sessions\{member="m1",service="alpha"\} 6$/m);
    assert.match(metrics, /^ebb_service_state\{member="m1",service="alpha",state="paused"\} 1$/m);
  });

  it('as the sessions end the page shows the member drained and ready for offline', async () => {
    await release('m1', 'alpha');
    await cellShows('m1', 'alpha', 'sessions', '0');
    await cellShows('m1', 'alpha', 'drained', 'Drained');
    assert.equal(
      await page.locator('tbody[data-member="m1"] [data-ready-for-offline]').count(),
      0,
      'beta has 2',
    );
    await release('m1', 'beta');
    await cellShows('m1', 'beta', 'drained', 'Drained');
    await page.locator('tbody[data-member="m1"] [data-ready-for-offline]').waitFor({ timeout: 10_000 });
    await page.locator('.chart-summary', { hasText: 'm1 is ready for offline' }).waitFor();
    await page.locator('.events li', { hasText: 'service.drained' }).first().waitFor();
    assert.equal((await status()).members[0]!.readyForOffline, true);
    await browser.screenshot(page, '05-ready-for-offline');
  });

  it("shows the capacity guard's refusal, from the keyboard, and Escape closes the dialog", async () => {
    const pauseM2 = await ebb('pause', 'm2');
    assert.equal(pauseM2.code, 0, pauseM2.stderr);
    await cellShows('m2', 'alpha', 'state', 'Paused');
    await page.locator('.capacity-item', { hasText: 'alpha' }).filter({ hasText: 'at guard' }).waitFor();

    const pauseM3 = page.getByRole('button', { name: 'Pause m3', exact: true });
    await pauseM3.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.equal(
      await page.evaluate(() => document.activeElement?.closest('dialog') !== null),
      true,
      'focus moved into the dialog',
    );
    // Operator audit #42: Tab and Shift+Tab cycle inside the dialog, never out to the page once.
    const inDialog = () => page.evaluate(() => document.activeElement?.closest('dialog') !== null);
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press(i < 8 ? 'Tab' : 'Shift+Tab');
      assert.equal(await inDialog(), true, `focus still in the dialog after ${i + 1} presses`);
      seen.add(await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 60) ?? ''));
    }
    assert.ok(seen.size >= 3, `Tab went through the dialog's controls (${seen.size})`);
    await dialog.locator('[data-autofocus]').focus();
    await page.keyboard.type('should be refused');
    await page.keyboard.press('Enter'); // submits the form
    const alert = dialog.getByRole('alert');
    await alert.waitFor({ timeout: 10_000 });
    const text = await alert.innerText();
    assert.match(text, /Refused by the capacity guard/);
    assert.match(
      text,
      /pause m3\/alpha would leave 0 member\(s\) accepting alpha; the pool needs at least 1/,
    );
    assert.equal(await dialog.getByRole('button', { name: 'Pause m3', exact: true }).isDisabled(), true);
    await dialog.getByLabel(/Override the capacity guard/).waitFor();
    await browser.screenshot(page, '06-guard-refused', { fullPage: false });

    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
      'Pause m3',
      'focus went back to the button that opened the dialog',
    );
    const s = await status();
    assert.equal(serviceOf(s, 'm3', 'alpha').state, 'running');
    assert.equal(serviceOf(s, 'm3', 'alpha').accepting, true);
    await page
      .locator('tr[data-audit-result="refused"]', { hasText: 'm3' })
      .first()
      .waitFor({ timeout: 10_000 });
    await page.locator('.events li', { hasText: 'guard.refused' }).first().waitFor();
  });

  it('Resume puts a member back in service', async () => {
    await page.getByRole('button', { name: 'Resume m1', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Resume m1', exact: true }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 15_000 });
    await cellShows('m1', 'alpha', 'state', 'Running');
    await cellShows('m1', 'alpha', 'accepting', 'Yes');
    const s = await status();
    assert.equal(serviceOf(s, 'm1', 'alpha').state, 'running');
    assert.equal(serviceOf(s, 'm1', 'beta').state, 'running');
    await page.locator('.toast', { hasText: 'Resume m1' }).waitFor();
    await browser.screenshot(page, '07-resumed');
  });

  it('sets a startup type from a dialog with a select', async () => {
    await page.getByRole('button', { name: 'Startup m3/beta', exact: true }).click();
    const dialog = page.getByRole('dialog');
    assert.equal((await dialog.getByRole('heading').innerText()).trim(), 'Startup type of m3/beta');
    await dialog.getByLabel('Startup type').selectOption('manual');
    await dialog.getByRole('button', { name: 'Set m3/beta to manual' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 15_000 });
    await cellShows('m3', 'beta', 'startup', 'manual');
    assert.equal(serviceOf(await status(), 'm3', 'beta').startup, 'manual');
  });

  it('a command with --force is labelled "guard overridden" in the audit log, not "forced" (audit #28)', async () => {
    const forced = await ebb('pause', 'm3', '--force', '--reason', 'console override label');
    assert.equal(forced.code, 0, forced.stderr);
    const row = page.locator('tr[data-audit-result="ok"]', { hasText: 'console override label' });
    await row.waitFor({ timeout: 10_000 });
    assert.match(await row.innerText(), /guard overridden/);
    assert.doesNotMatch(await row.innerText(), /\bforced\b/);
    assert.equal((await ebb('resume', 'm3')).code, 0);
  });

  it('fits a small laptop screen', async () => {
    await page.setViewportSize({ width: 1280, height: 720 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling (${overflow} px too wide)`);
    await browser.screenshot(page, '08-laptop-1280x720', { fullPage: false });
  });

  it('had no page errors', () => {
    // Chromium logs the refused command's HTTP 409 as a failed resource load; that one is expected.
    const unexpected = browser.errors.filter((e) => !/status of 409 \(Conflict\)/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
