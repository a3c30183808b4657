import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConnectionOptions } from 'node:tls';
import type { Page } from 'playwright-core';
import { build } from 'vite';
import WebSocket, { type ClientOptions } from 'ws';
import { ConsoleBrowser } from './harness/browser.ts';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { makeCertificates, type TestCertificates } from './http-support.ts';

const root = resolve(import.meta.dirname, '..');
const pageDir = join(root, 'test/sip-browser');

interface PhoneEvent {
  type: string;
  at: number;
  code?: number;
  originator?: string;
  cause?: string;
}

/** JsSIP from npm as one browser script (its package ships CommonJS only), built with Vite into `dir`. */
async function bundleJssip(dir: string): Promise<string> {
  await build({
    configFile: false,
    logLevel: 'warn',
    root,
    build: {
      outDir: dir,
      emptyOutDir: true,
      minify: false,
      lib: {
        entry: join(root, 'node_modules/jssip/lib/JsSIP.js'),
        name: 'JsSIP',
        formats: ['iife'],
        fileName: () => 'jssip.js',
      },
    },
  });
  return readFileSync(join(dir, 'jssip.js'), 'utf8');
}

/**
 * SIP over WebSocket (RFC 7118, SPEC §14) from headless Chromium with JsSIP, a browser SIP library the
 * project did not write: it registers and calls the built-in callee through `ebb up`; a pause lets the
 * call go on; the deadline ends it with a BYE, then the WebSocket closes with 1012.
 */
describe('SIP over WebSocket from a browser (JsSIP)', () => {
  const ws = new Workspace('ebb-sip-ws-');
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  let web: Server;
  let browser: ConsoleBrowser;
  let page: Page;
  let certs: TestCertificates;

  before(async () => {
    base = await freePortRange(6);
    certs = await makeCertificates(mkdtempSync(join(tmpdir(), 'ebb-sip-wss-')), ['wss']);
    const jssip = await bundleJssip(join(ws.dir, 'bundle'));
    const files: Record<string, [string, string]> = {
      '/': ['text/html', readFileSync(join(pageDir, 'page.html'), 'utf8')],
      '/phone.js': ['text/javascript', readFileSync(join(pageDir, 'phone.js'), 'utf8')],
      '/jssip.js': ['text/javascript', jssip],
    };
    web = createServer((req, res) => {
      const f = files[req.url ?? ''];
      if (req.url === '/favicon.ico') return void res.writeHead(204).end();
      res.writeHead(f ? 200 : 404, { 'Content-Type': f?.[0] ?? 'text/plain' });
      res.end(f?.[1] ?? 'not found');
    });
    await new Promise<void>((r) => web.listen(base + 3, '127.0.0.1', () => r()));
    pool = sipPool({
      dir: ws.dir,
      apiPort: base + 1,
      dnsPort: base + 2,
      services: [
        {
          id: 'securephone',
          port: base + 4,
          transports: ['wss'],
          upstream: 'builtin:sip-uas',
          tls: certs.servers['wss']!,
        },
        { id: 'webphone', port: base, transports: ['ws'], upstream: 'builtin:sip-uas', closeSpread: '1s' },
      ],
    });
    const config = ws.file('pool.yaml', pool.yaml);
    ebb = new EbbCli(config);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    browser = await ConsoleBrowser.launch({
      args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
    });
    page = await browser.open(`http://127.0.0.1:${base + 3}/`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop('SIGKILL');
    await new Promise<void>((r) => (web ? web.close(() => r()) : r()));
    ws.cleanup();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  const events = (): Promise<PhoneEvent[]> =>
    page.evaluate(() => (window as unknown as { phone: { events: PhoneEvent[] } }).phone.events);
  async function waitForEvent(type: string, timeoutMs: number): Promise<PhoneEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = await events();
      const found = all.find((e) => e.type === type);
      if (found) return found;
      if (Date.now() > deadline) assert.fail(`no ${type} in ${timeoutMs} ms: ${JSON.stringify(all)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('an upgrade without the sip subprotocol is refused; with it, SIP in text frames and a Record-Route with transport=ws', async () => {
    const host = pool.members[0]!.address;
    const plain = new WebSocket(`ws://${host}:${base}`);
    plain.on('error', () => {});
    const refused = await new Promise<number>((r) =>
      plain.once('unexpected-response', (req, res) => {
        req.destroy();
        r(res.statusCode!);
      }),
    );
    assert.equal(refused, 400, 'RFC 7118 §4.1: no sip subprotocol, no SIP');
    const sip = new WebSocket(`ws://${host}:${base}`, 'sip');
    await new Promise<void>((r, j) => sip.once('open', () => r()).once('error', j));
    assert.equal(sip.protocol, 'sip');
    const frames: string[] = [];
    sip.on('message', (d: Buffer) => frames.push(d.toString()));
    sip.send(
      [
        `INVITE sip:conf@${host}:${base} SIP/2.0`,
        `Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKwsraw1;rport`,
        'Max-Forwards: 70',
        'From: <sip:raw@ebb.invalid>;tag=raw1',
        `To: <sip:conf@${host}>`,
        'Call-ID: ws-raw-1',
        'CSeq: 1 INVITE',
        'Contact: <sip:raw@df7jal23ls0d.invalid;transport=ws>',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    const deadline = Date.now() + 3000;
    while (!frames.some((f) => f.startsWith('SIP/2.0 200')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const ok = frames.find((f) => f.startsWith('SIP/2.0 200'));
    assert.ok(ok, `a 200 in a text frame: ${frames.join(' | ')}`);
    assert.match(
      ok,
      new RegExp(`Record-Route: <sip:${host.replaceAll('.', '\\.')}:${base};transport=ws;lr>`),
    );
    // Hang up (ACK, BYE along the route) so the call does not linger.
    const toTag = /^To:.*;tag=([^;\s]+)/m.exec(ok)![1]!;
    const rr = /^Record-Route: (.+)$/m.exec(ok)![1]!.trim();
    for (const [method, cseq] of [
      ['ACK', 1],
      ['BYE', 2],
    ] as const) {
      sip.send(
        [
          `${method} sip:conf@127.0.0.1 SIP/2.0`,
          `Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKwsraw${method};rport`,
          `Route: ${rr}`,
          'Max-Forwards: 70',
          'From: <sip:raw@ebb.invalid>;tag=raw1',
          `To: <sip:conf@${host}>;tag=${toTag}`,
          'Call-ID: ws-raw-1',
          `CSeq: ${cseq} ${method}`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    }
    await ebb.waitFor('m1', 'webphone', (s) => s.sessions === 0, 'the raw call hung up');
    sip.close();
  });

  /** OPTIONS over a WebSocket to the front end: the status line of the answer. */
  async function optionsOver(sock: WebSocket, port: number): Promise<string> {
    const frames: string[] = [];
    sock.on('message', (d: Buffer) => frames.push(d.toString()));
    sock.send(
      [
        `OPTIONS sip:${pool.members[0]!.address}:${port};transport=ws SIP/2.0`,
        `Via: SIP/2.0/WSS k3j2.invalid;branch=z9hG4bKopt${Date.now()};rport`,
        'Max-Forwards: 70',
        'From: <sip:probe@ebb.invalid>;tag=p1',
        `To: <sip:${pool.members[0]!.address}>`,
        `Call-ID: opt-${Date.now()}`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    const deadline = Date.now() + 3000;
    const answer = () => frames.find((f) => f.startsWith('SIP/2.0 '));
    while (!answer() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return answer()?.split('\r\n')[0] ?? `no answer in ${JSON.stringify(frames)}`;
  }

  const open = (sock: WebSocket) =>
    new Promise<void>((r, j) => sock.once('open', () => r()).once('error', j));

  it('wss: TLS with the test CA, the sip subprotocol, SIP answered', async () => {
    // The test certificate names localhost and 127.0.0.1, not the member's loopback alias; ws hands
    // these options to tls.connect.
    const tlsOptions: ConnectionOptions = { ca: readFileSync(certs.ca), servername: 'localhost' };
    const sock = new WebSocket(
      `wss://${pool.members[0]!.address}:${base + 4}`,
      'sip',
      tlsOptions as ClientOptions,
    );
    await open(sock);
    assert.equal(await optionsOver(sock, base + 4), 'SIP/2.0 200 OK');
    sock.close();
  });

  it('hostile frames (noise, broken SIP, a 70 KB frame) close at most their own flow; the front end answers', async () => {
    const host = pool.members[0]!.address;
    const noisy = new WebSocket(`ws://${host}:${base}`, 'sip');
    await open(noisy);
    after(() => noisy.terminate());
    noisy.send(Buffer.from([0xff, 0x00, 0x13, 0x37]));
    noisy.send('INVITE nonsense\r\n\r\n');
    noisy.send('\r\n\r\n');
    assert.equal(await optionsOver(noisy, base), 'SIP/2.0 200 OK', 'the same flow still speaks SIP');
    const closed = new Promise<number>((r) => noisy.once('close', (code) => r(code)));
    noisy.send('x'.repeat(70_000));
    assert.equal(await closed, 1009, 'over 64 KB: Message Too Big');
    const fresh = new WebSocket(`ws://${host}:${base}`, 'sip');
    await open(fresh);
    assert.equal(await optionsOver(fresh, base), 'SIP/2.0 200 OK');
    fresh.close();
  });

  it('JsSIP registers and calls the built-in callee; paused, the call goes on; the deadline ends it with BYE then 1012', async () => {
    const host = pool.members[0]!.address;
    await page.evaluate(
      ([url, domain]) =>
        (window as unknown as { phone: { start(u: string, d: string): void } }).phone.start(url!, domain!),
      [`ws://${host}:${base}`, host],
    );
    await waitForEvent('registered', 10_000);
    await page.evaluate(
      (target) => (window as unknown as { phone: { call(t: string): void } }).phone.call(target),
      `sip:conf@${host}:${base}`,
    );
    await waitForEvent('confirmed', 10_000);
    const up = await ebb.waitFor(
      'm1',
      'webphone',
      (s) => s.sessions === 1 && s.flows === 1,
      'the call and its flow',
    );
    assert.equal(up.accepting, true);

    const pause = await ebb.run('pause', 'm1', '--service', 'webphone', '--deadline', '3s');
    assert.equal(pause.code, 0, pause.stderr);
    await new Promise((r) => setTimeout(r, 1500)); // past closeSpread: a flow with a call stays open
    const paused = await ebb.service('m1', 'webphone');
    assert.equal(paused.sessions, 1, 'the call goes on while paused');
    assert.equal(paused.flows, 1);
    assert.equal(
      (await events()).some((e) => e.type === 'ended' || e.type === 'wsclose'),
      false,
    );

    const ended = await waitForEvent('ended', 10_000);
    assert.equal(ended.originator, 'remote', 'ended by the BYE Ebb sent in the callee’s name');
    const closed = await waitForEvent('wsclose', 5000);
    assert.equal(closed.code, 1012, 'then the WebSocket closes with 1012 (Service Restart)');
    assert.ok(closed.at >= ended.at, 'the BYE came first');
    const done = await ebb.waitFor('m1', 'webphone', (s) => s.sessions === 0, 'no call left');
    assert.equal(done.forced, 1);
    assert.deepEqual(browser.errors, []);
  });
});
