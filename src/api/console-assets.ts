import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import type { Context } from 'hono';

/** Where `vite build console` writes the web console (see `console/vite.config.ts`). */
export const defaultConsoleDir = resolve(import.meta.dirname, '../../console/dist');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The console's own page may load only what this server serves, and talk only to this API:
 * nothing is fetched from elsewhere at run time.
 */
const securityHeaders: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/**
 * Serves the built web console from `console/dist`: `index.html` at `/`, hashed bundles under `/assets/`
 * (cached for a year, their names change with their content). A missing build is a 503 page that says
 * how to build it, never a crash.
 */
export class ConsoleAssets {
  readonly dir: string;

  constructor(dir: string = defaultConsoleDir) {
    this.dir = resolve(dir);
  }

  index(c: Context): Promise<Response> {
    return this.serve(c, 'index.html');
  }

  /** `/assets/<file>`: only plain file names inside the assets folder are served. */
  async asset(c: Context): Promise<Response> {
    const file = c.req.param('file') ?? '';
    if (!/^[\w-][\w.-]*$/.test(file)) return this.notFound(c);
    return this.serve(c, `assets/${file}`);
  }

  private async serve(c: Context, relative: string): Promise<Response> {
    const path = resolve(this.dir, relative);
    const type = contentTypes[extname(path)];
    if (!path.startsWith(this.dir + sep) || !type) return this.notFound(c);
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return relative === 'index.html' ? this.missingBuild(c) : this.notFound(c);
    }
    const immutable = relative.startsWith('assets/');
    return c.body(new Uint8Array(body), 200, {
      ...securityHeaders,
      'Content-Type': type,
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
  }

  private notFound(c: Context): Response {
    return c.text('not found', 404, { ...securityHeaders });
  }

  private missingBuild(c: Context): Response {
    const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ebb console not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2933}
code{background:#eef2f6;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>The Ebb console is not built</h1>
<p>The API is running, but <code>${escapeHtml(join(this.dir, 'index.html'))}</code> is missing.</p>
<p>Build it once with <code>npm run build:console</code> (or <code>npx vite build console</code>), then reload.
The HTTP API (<a href="/v1/openapi.json">/v1/openapi.json</a>), events and metrics work without it.</p>
</body></html>`;
    return c.html(html, 503, { ...securityHeaders, 'Cache-Control': 'no-store', 'Retry-After': '10' });
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
