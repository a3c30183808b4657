import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');

/** Debian's `chromium`; CI installs it through `scripts/ensure-deps.sh --peers`. */
export const chromiumBin = process.env['EBB_CHROMIUM_BIN'] ?? '/usr/bin/chromium';

/** Where screenshots go (git-ignored). */
export const artifactsDir = join(root, 'artifacts/console');

/** Builds the web console into `console/dist` when it is missing or older than its sources. */
export function ensureConsoleBuilt(): void {
  const built = join(root, 'console/dist/index.html');
  if (existsSync(built) && statSync(built).mtimeMs >= newestSource()) return;
  const result = spawnSync(
    join(root, 'node_modules/.bin/node'),
    [join(root, 'node_modules/vite/bin/vite.js'), 'build', 'console', '--logLevel', 'warn'],
    { cwd: root, encoding: 'utf8', timeout: 120_000 },
  );
  if (result.status !== 0) throw new Error(`vite build console failed:\n${result.stdout}\n${result.stderr}`);
}

function newestSource(): number {
  const sources = [join(root, 'console/index.html'), join(root, 'console/vite.config.ts')];
  for (const entry of readdirSync(join(root, 'console/src'), { recursive: true, withFileTypes: true }))
    if (entry.isFile()) sources.push(join(entry.parentPath, entry.name));
  return Math.max(...sources.map((path) => statSync(path).mtimeMs));
}

/**
 * A headless Chromium with a fresh profile, driven by playwright-core. Every page it opens records
 * uncaught exceptions and console errors, so a test can assert there were none. Nothing is fetched from
 * the network: the flags turn off Chromium's own background traffic.
 */
export class ConsoleBrowser {
  readonly context: BrowserContext;
  readonly errors: string[] = [];
  private readonly profile: string;

  private constructor(context: BrowserContext, profile: string) {
    this.context = context;
    this.profile = profile;
  }

  static async launch(
    options: {
      width?: number;
      height?: number;
      /** More Chromium flags (fake media devices…). */ args?: string[];
    } = {},
  ): Promise<ConsoleBrowser> {
    if (!existsSync(chromiumBin)) {
      throw new Error(
        `${chromiumBin} is missing: install Debian's chromium (scripts/ensure-deps.sh --peers)`,
      );
    }
    const profile = mkdtempSync(join(tmpdir(), 'ebb-chromium-'));
    try {
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumBin,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          ...(options.args ?? []),
        ],
        viewport: { width: options.width ?? 1440, height: options.height ?? 900 },
        deviceScaleFactor: 1,
        timeout: 30_000,
      });
      return new ConsoleBrowser(context, profile);
    } catch (err) {
      rmSync(profile, { recursive: true, force: true });
      throw err;
    }
  }

  /** Opens `url` in a new page that reports its errors into `errors`. */
  async open(url: string): Promise<Page> {
    const page = await this.context.newPage();
    page.on('pageerror', (err) => this.errors.push(`pageerror: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') this.errors.push(`console.error: ${message.text()}`);
    });
    await page.goto(url, { waitUntil: 'load' });
    return page;
  }

  /** Saves a screenshot (the full page unless told otherwise) as `artifacts/console/<name>.png`. */
  async screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<string> {
    mkdirSync(artifactsDir, { recursive: true });
    const path = join(artifactsDir, `${name}.png`);
    await page.screenshot({ path, fullPage: options.fullPage ?? true });
    return path;
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => {});
    rmSync(this.profile, { recursive: true, force: true });
  }
}
