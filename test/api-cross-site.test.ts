import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { AuditRecord, PoolStatus } from '../src/control/index.ts';
import { ConsoleBrowser, ensureConsoleBuilt } from './harness/browser.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { poolYaml, testPool, type TestPool } from './harness/pool-config.ts';
import { freePort, freePortRange } from './harness/ports.ts';

/**
 * SPEC §8: loopback is not a trust boundary against the operator's own browser. `ebb up` runs without
 * tokens (every caller would be the local admin); a page served from another origin (127.0.0.2) tries to
 * drive the pool from headless Chromium — a no-cors fetch with a text/plain body, a bodiless no-cors
 * fetch, a form post — and a DNS-rebinding client sends a foreign `Host`. Nothing may change, every
 * state-changing refusal must be in the audit log as `denied`, and the console on the API's own origin
 * must still work.
 */
describe('the API refuses cross-site requests and DNS rebinding', () => {
  const ws = new Workspace('ebb-cross-site-');
  let pool: TestPool;
  let config: string;
  let apiPort: number;
  let server: EbbServer;
  let attacker: Server;
  let attackerOrigin: string;
  let browser: ConsoleBrowser;
  let page: Page;
  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const status = async () => {
    const run = await ebb('status', '--json');
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as PoolStatus;
  };
  const stateOf = (s: PoolStatus, member: string) =>
    s.members.find((m) => m.id === member)!.services.find((x) => x.id === 'alpha')!.state;
  const audit = async () =>
    (await (await fetch(`${pool.apiUrl}/v1/audit?limit=1000`)).json()) as AuditRecord[];

  /** A raw HTTP request to the API with headers fetch() will not send (Host) or drops. */
  const raw = (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: apiPort, method, path, headers, setHost: !('host' in headers) },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const codeOf = (body: string) => (JSON.parse(body) as { error?: { code?: string } }).error?.code;

  before(async () => {
    ensureConsoleBuilt();
    const portBase = await freePortRange(32);
    pool = testPool({
      portBase,
      members: 2,
      store: `sqlite:${ws.dir}/state.db`,
      localState: `${ws.dir}/local`,
      services: [{ id: 'alpha' }],
      dnsPort: portBase + 30,
    });
    apiPort = portBase + 31;
    pool.config.api = { ...pool.config.api, hosts: ['ebb.example.internal'] };
    config = ws.file('pool.yaml', poolYaml(pool.config));
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });

    // The attacker: any page the operator happens to open, here on another loopback address.
    const attackerPort = await freePort('127.0.0.2');
    attacker = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>totally harmless</title><iframe name="sink"></iframe>');
    });
    await new Promise<void>((resolve) => attacker.listen(attackerPort, '127.0.0.2', () => resolve()));
    attackerOrigin = `http://127.0.0.2:${(attacker.address() as AddressInfo).port}`;
    browser = await ConsoleBrowser.launch();
    page = await browser.open(`${attackerOrigin}/`);
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (attacker ? attacker.close(() => resolve()) : resolve()));
    await server?.stop('SIGTERM');
    ws.cleanup();
  });

  it('a page on another origin cannot stop or pause a member', async () => {
    const before = await status();
    assert.equal(stateOf(before, 'm1'), 'running');
    assert.equal(stateOf(before, 'm2'), 'running');

    await page.evaluate(async (api) => {
      // A "simple" request: no preflight, so the browser sends it; the page cannot read the answer.
      await fetch(`${api}/v1/members/m1/stop`, {
        method: 'POST',
        mode: 'no-cors',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ force: true }),
      });
      // No body at all: no Content-Type either.
      await fetch(`${api}/v1/members/m2/pause`, { method: 'POST', mode: 'no-cors' });
      // The classic form that smuggles JSON in a text/plain body: name + '=' + value.
      const form = document.createElement('form');
      form.method = 'POST';
      form.enctype = 'text/plain';
      form.action = `${api}/v1/members/m1/stop`;
      form.target = 'sink';
      const input = document.createElement('input');
      input.name = '{"force":true,"pad":"';
      input.value = '"}';
      form.append(input);
      document.body.append(form);
      const sink = document.querySelector('iframe')!;
      const loaded = new Promise((resolve) => sink.addEventListener('load', resolve, { once: true }));
      form.submit();
      await loaded;
    }, pool.apiUrl);

    const afterwards = await status();
    assert.equal(stateOf(afterwards, 'm1'), 'running', 'm1 still runs');
    assert.equal(stateOf(afterwards, 'm2'), 'running', 'm2 still runs');
    const denied = (await audit()).filter((r) => r.result === 'denied');
    const stops = denied.filter((r) => r.member === 'm1' && r.action === 'stop');
    assert.equal(stops.length, 2, `the fetch and the form: ${JSON.stringify(denied)}`);
    for (const r of stops) {
      assert.equal(r.by, 'anonymous');
      assert.match(r.detail, /EBB_FOREIGN_ORIGIN/);
      assert.ok(r.detail.includes(attackerOrigin), r.detail);
    }
    const pause = denied.find((r) => r.member === 'm2' && r.action === 'pause');
    assert.ok(pause, 'the bodiless fetch is audited');
    assert.match(pause.detail, /EBB_FOREIGN_ORIGIN/);
  });

  it('a DNS-rebinding client (a foreign Host) reads nothing and changes nothing', async () => {
    const read = await raw('GET', '/v1/pool', { host: `attacker.example:${apiPort}` });
    assert.equal(read.status, 403);
    assert.equal(codeOf(read.body), 'EBB_BAD_HOST');
    assert.match(read.body, /Host/);
    assert.equal((await raw('GET', '/', { host: `attacker.example:${apiPort}` })).status, 403);
    assert.equal((await raw('GET', '/metrics', { host: `attacker.example:${apiPort}` })).status, 403);

    const write = await raw(
      'POST',
      '/v1/members/m1/stop',
      { host: `attacker.example:${apiPort}`, 'content-type': 'application/json' },
      JSON.stringify({ service: 'alpha', force: true }),
    );
    assert.equal(write.status, 403);
    assert.equal(codeOf(write.body), 'EBB_BAD_HOST');
    assert.equal(stateOf(await status(), 'm1'), 'running');
    const record = (await audit()).find(
      (r) => r.result === 'denied' && r.member === 'm1' && /EBB_BAD_HOST/.test(r.detail),
    );
    assert.ok(record, 'the rebinding attempt is audited');
    assert.equal(record.service, 'alpha', 'the service named in the JSON body');
    assert.equal(record.force, true);
  });

  it('the API answers to its own names: the listen address, localhost, api.hosts; /healthz to any', async () => {
    for (const host of [`127.0.0.1:${apiPort}`, `localhost:${apiPort}`, `ebb.example.internal:${apiPort}`]) {
      assert.equal((await raw('GET', '/v1/pool', { host })).status, 200, host);
    }
    assert.equal((await raw('GET', '/v1/pool', { host: `localhost:${apiPort + 1}` })).status, 403);
    assert.equal((await raw('GET', '/healthz', { host: 'attacker.example' })).status, 200);
  });

  it('without a browser: text/plain is 415, a foreign Origin or Sec-Fetch-Site is 403', async () => {
    const plain = await raw(
      'POST',
      '/v1/members/m1/pause',
      { 'content-type': 'text/plain' },
      JSON.stringify({ service: 'alpha' }),
    );
    assert.equal(plain.status, 415);
    assert.equal(codeOf(plain.body), 'EBB_NOT_JSON');
    assert.match(plain.body, /Content-Type/);

    const json = { 'content-type': 'application/json' };
    const body = JSON.stringify({ service: 'alpha' });
    const origin = await raw(
      'POST',
      '/v1/members/m1/pause',
      { ...json, origin: 'http://evil.example' },
      body,
    );
    assert.equal(origin.status, 403);
    assert.equal(codeOf(origin.body), 'EBB_FOREIGN_ORIGIN');
    assert.match(origin.body, /Origin/);
    const site = await raw('POST', '/v1/members/m1/pause', { ...json, 'sec-fetch-site': 'cross-site' }, body);
    assert.equal(site.status, 403);
    assert.equal(codeOf(site.body), 'EBB_FOREIGN_ORIGIN');
    assert.match(site.body, /Sec-Fetch-Site/);
    assert.equal(stateOf(await status(), 'm1'), 'running');
  });

  it('the console on the API’s own origin still pauses and resumes', async () => {
    browser.errors.length = 0; // the attacker page's refused requests are logged as errors
    const own = await browser.open(pool.apiUrl);
    await own.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    const answer = (action: string) =>
      own.evaluate(async (action) => {
        const res = await fetch(`/v1/members/m1/${action}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ service: 'alpha', reason: 'same origin' }),
        });
        return res.status;
      }, action);
    assert.equal(await answer('pause'), 200);
    assert.equal(stateOf(await status(), 'm1'), 'paused');
    assert.equal(await answer('resume'), 200);
    assert.equal(stateOf(await status(), 'm1'), 'running');
    await own.close();
    assert.deepEqual(browser.errors, []);
  });
});
