/**
 * Headless Chromium holding WebSockets through the http listener from a real page: the builtin:web chat
 * (SPEC §10). Two tabs chat through a pause; at the deadline Chromium's WebSocket sees 1012.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { HttpListener } from '../src/listeners/http/index.ts';
import { ConsoleBrowser } from './harness/browser.ts';
import { freePort } from './harness/ports.ts';
import { eventually } from './http-support.ts';

const host = '127.0.0.1';

describe('http listener: Chromium', () => {
  let listener: HttpListener;
  let browser: ConsoleBrowser;
  let base = '';
  before(async () => {
    const port = await freePort();
    listener = new HttpListener({ host, port, upstream: 'builtin', member: 'fe01', closeSpreadMs: 200 });
    await listener.open(false);
    base = `http://${host}:${port}`;
    browser = await ConsoleBrowser.launch();
  });
  after(async () => {
    await browser?.close();
    await listener.destroy();
  });

  const socketState = (page: Page) => page.locator('#state').textContent();
  const say = async (page: Page, text: string) => {
    await page.fill('#text', text);
    await page.click('form button');
  };

  it('two tabs chat through a pause; the deadline closes them with 1012', async () => {
    const [a, b] = [await browser.open(`${base}/`), await browser.open(`${base}/`)];
    for (const page of [a, b]) {
      await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open');
    }
    assert.equal(await a.locator('#member').textContent(), 'fe01');
    await eventually(() => listener.stats().byKind.websockets === 2, 'two websockets');

    await listener.refuse();
    await say(a, 'during the pause');
    await b.waitForFunction(() => document.getElementById('log')?.textContent?.includes('during the pause'));
    assert.equal(await socketState(b), 'open');

    assert.equal(await listener.endSessions(), 2);
    for (const page of [a, b]) {
      await page.waitForFunction(
        () => ((window as unknown as { ebbCloseCodes?: number[] }).ebbCloseCodes ?? []).length > 0,
      );
      const codes = await page.evaluate(
        () => (window as unknown as { ebbCloseCodes: number[] }).ebbCloseCodes,
      );
      assert.equal(codes[0], 1012);
    }
    assert.equal(listener.stats().forced, 2);
    assert.deepEqual(
      browser.errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(e)),
      [],
    );
  });
});
