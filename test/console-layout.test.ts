import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { ConsoleBrowser, ensureConsoleBuilt } from './harness/browser.ts';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { poolYaml, testPool, type TestPool } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

/** What the check in the page found: controls whose centre is under something else, and page overflow. */
interface LayoutReport {
  controls: number;
  covered: string[];
  scrollWidth: number;
  clientWidth: number;
  /** The pool table's width against the width of the box that holds it. */
  table: { width: number; room: number };
}

/**
 * Every visible control of the page, brought into view (the pool table may scroll inside its card),
 * must be what `elementFromPoint` finds at its centre; and the page itself must not scroll sideways.
 */
function checkLayout(page: Page): Promise<LayoutReport> {
  return page.evaluate(() => {
    const covered: string[] = [];
    const controls = [
      ...document.querySelectorAll<HTMLElement>('button, a[href], input, select, textarea'),
    ].filter(
      (el) =>
        !el.classList.contains('skip-link') && // off screen until focused, by design
        el.getClientRects().length > 0 &&
        getComputedStyle(el).visibility !== 'hidden',
    );
    for (const el of controls) {
      el.scrollIntoView({ block: 'center', inline: 'center' });
      const box = el.getBoundingClientRect();
      const x = box.left + box.width / 2;
      const y = box.top + box.height / 2;
      const hit = document.elementFromPoint(x, y);
      if (!hit || !(hit === el || el.contains(hit))) {
        const name = el.getAttribute('aria-label') ?? el.textContent?.trim() ?? el.tagName;
        const by = hit
          ? `${hit.tagName.toLowerCase()}.${[...hit.classList].join('.')}`
          : 'nothing (off screen)';
        covered.push(`${name} at (${Math.round(x)}, ${Math.round(y)}) is under ${by}`);
      }
    }
    window.scrollTo(0, 0);
    // The table against the box that holds it: wider means it spills out of, or scrolls inside, its card.
    const table = document.querySelector<HTMLElement>('.pool-table')!;
    const box = table.parentElement!;
    box.scrollLeft = 0;
    return {
      table: { width: table.offsetWidth, room: box.clientWidth },
      controls: controls.length,
      covered,
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    };
  });
}

const sizes = [
  { width: 1680, height: 1050 },
  { width: 1280, height: 800 },
  { width: 1440, height: 900 },
  { width: 800, height: 600 },
  { width: 420, height: 800 },
];

/**
 * The console's layout at the sizes operators use (operator audit #6, #43) and what it shows when the
 * API or an agent is gone (#20): `ebb up` in its own process, the page in headless Chromium.
 */
describe('web console layout and stale data in Chromium', () => {
  const ws = new Workspace('ebb-console-layout-');
  /** Kept after the run (the workspace is not), so the screenshots can be looked at. */
  const shots = mkdtempSync(join(tmpdir(), 'ebb-console-layout-shots-'));
  let pool: TestPool;
  let config: string;
  let server: EbbServer | undefined;
  let browser: ConsoleBrowser;
  let page: Page;
  const shot = async (name: string) => {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

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
    // Names and components as the demo pool has them, so the table is as wide as an operator's.
    for (const member of pool.config.members)
      for (const service of member.services) {
        service.name = service.id === 'alpha' ? 'Conferencing Attendant' : 'Response Group';
        service.components = ['front-end', 'monitoring-agent'];
      }
    config = ws.file('pool.yaml', poolYaml(pool.config));
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    browser = await ConsoleBrowser.launch();
    page = await browser.open(pool.apiUrl);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
  });

  after(async () => {
    console.log(`# console screenshots: ${shots}`);
    await browser?.close();
    await server?.stop('SIGTERM');
    ws.cleanup();
  });

  for (const size of sizes) {
    it(`at ${size.width}×${size.height} no control is covered and the page does not scroll sideways`, async () => {
      await page.setViewportSize(size);
      await page.locator('tbody[data-member="m3"] tr[data-service="beta"]').waitFor();
      await shot(`layout-${size.width}x${size.height}`);
      const report = await checkLayout(page);
      assert.ok(report.controls >= 33, `found the pool's buttons (${report.controls})`);
      assert.deepEqual(report.covered, []);
      assert.ok(
        report.scrollWidth <= report.clientWidth,
        `page scrollWidth ${report.scrollWidth} > clientWidth ${report.clientWidth}`,
      );
      if (size.width >= 1280)
        assert.ok(
          report.table.width <= report.table.room,
          `on a laptop the pool table fits its card, no sideways scroll to reach Stop (${report.table.width} > ${report.table.room})`,
        );
    });
  }

  it("a command's notice covers no control (#43)", async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByRole('button', { name: 'Pause m3/beta', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Pause m3/beta', exact: true }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 15_000 });
    await page.locator('.toast', { hasText: 'Pause m3/beta' }).waitFor();
    await shot('layout-1280x800-notice');
    for (const size of [
      { width: 1280, height: 800 },
      { width: 420, height: 800 },
    ]) {
      await page.setViewportSize(size);
      const report = await checkLayout(page);
      assert.deepEqual(report.covered, [], `at ${size.width}×${size.height}`);
      assert.ok(report.scrollWidth <= report.clientWidth);
    }
  });

  it('when the API stops answering: a banner with the time of the data, the pool greyed, actions off (#20)', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    const before = await page.locator('.pool-card').evaluate((el) => getComputedStyle(el).opacity);
    assert.equal(before, '1');
    await server!.stop('SIGKILL');
    server = undefined;
    const banner = page.locator('[data-stale-banner]');
    await banner.waitFor({ timeout: 10_000 });
    assert.match(await banner.innerText(), /Lost contact with the API — data as of \d{2}:\d{2}:\d{2}/);
    assert.equal(await page.locator('main.layout-stale').count(), 1);
    const style = await page
      .locator('.pool-card')
      .evaluate((el) => ({ opacity: getComputedStyle(el).opacity, filter: getComputedStyle(el).filter }));
    assert.ok(Number(style.opacity) < 0.7, `greyed (opacity ${style.opacity})`);
    assert.match(style.filter, /grayscale/);
    assert.equal(await page.getByRole('button', { name: 'Pause m1', exact: true }).isDisabled(), true);
    // Still shown: the data the operator last saw, marked as such.
    await page.locator('tbody[data-member="m1"] tr[data-service="alpha"]').waitFor();
    await shot('stale-1280x800');
    const report = await checkLayout(page);
    assert.ok(report.scrollWidth <= report.clientWidth);
  });
});

describe('web console: a member whose agent is down (#20)', () => {
  const ws = new Workspace('ebb-console-agent-down-');
  const servers: EbbServer[] = [];
  let browser: ConsoleBrowser;
  let page: Page;

  before(async () => {
    ensureConsoleBuilt();
    const portBase = await freePortRange(32);
    const pool = testPool({
      portBase,
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'alpha' }],
      dnsPort: portBase + 30,
    });
    const config = ws.file('pool.yaml', pool.yaml);
    // m1's and m2's agents run, m3 has none; m2's agent is killed once the page shows it up, so its
    // last status (running, accepting) stays in the store while its lease lapses.
    for (const id of ['m1', 'm2'])
      servers.push(
        await EbbServer.start(['agent', '--config', config, '--member', id], /running/, { cwd: ws.dir }),
      );
    servers.push(await EbbServer.start(['api', '--config', config], /ebb api:/, { cwd: ws.dir }));
    browser = await ConsoleBrowser.launch({ width: 1280, height: 800 });
    page = await browser.open(pool.apiUrl);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    for (const server of servers.reverse()) await server.stop('SIGTERM');
    ws.cleanup();
  });

  it('shows "Agent down" and never "In service" for it; the member with an agent is in service', async () => {
    await page
      .locator('tbody[data-member="m2"] .member-row', { hasText: 'Agent up' })
      .waitFor({ timeout: 10_000 });
    await servers[1]!.stop('SIGKILL');
    const m1 = page.locator('tbody[data-member="m1"] .member-row');
    await m1.filter({ hasText: 'In service' }).waitFor({ timeout: 10_000 });
    assert.match(await m1.innerText(), /Agent up/);
    for (const id of ['m2', 'm3']) {
      const head = page.locator(`tbody[data-member="${id}"] .member-row`);
      await head.filter({ hasText: 'Agent down' }).waitFor({ timeout: 10_000 });
      const text = await head.innerText();
      assert.doesNotMatch(text, /In service/);
      assert.match(text, /Out of service/);
      assert.equal(
        (await page.locator(`tbody[data-member="${id}"] td[data-col="accepting"]`).innerText()).trim(),
        'No',
      );
    }
    const shots = mkdtempSync(join(tmpdir(), 'ebb-console-agent-down-shots-'));
    await page.screenshot({ path: join(shots, 'agent-down.png'), fullPage: true });
    console.log(`# console screenshots: ${shots}`);
  });
});
