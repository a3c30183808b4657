import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { SipStreamParser, type SipMessage } from '../src/sip/index.ts';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { Baresip } from './harness/sip-baresip.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { makeCertificates, type TestCertificates } from './http-support.ts';

/**
 * `transport: tls` (SPEC §11, §14) through `ebb up`, with certificates from a CA the test makes with
 * openssl: baresip calls over TLS (a real phone); Node's TLS client verifies the chain; replacing the
 * files and SIGHUP gives new connections the new certificate while a call on the old one goes on.
 * (Debian's SIPp is built without OpenSSL — `-t l1` says "you must compile SIPp with OpenSSL" — so
 * baresip is the real TLS peer here.)
 */
describe('SIP over TLS', () => {
  const ws = new Workspace('ebb-sip-tls-');
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  let certs: TestCertificates;
  let live: { cert: string; key: string };
  const phones: Baresip[] = [];

  before(async () => {
    base = await freePortRange(8);
    certs = await makeCertificates(mkdtempSync(join(tmpdir(), 'ebb-sip-tls-')), ['first', 'second']);
    live = { cert: join(certs.dir, 'live.pem'), key: join(certs.dir, 'live.key') };
    copyFileSync(certs.servers['first']!.cert, live.cert);
    copyFileSync(certs.servers['first']!.key, live.key);
    pool = sipPool({
      dir: ws.dir,
      apiPort: base + 1,
      dnsPort: base + 2,
      services: [{ id: 'secure', port: base, transports: ['tls'], upstream: 'builtin:sip-uas', tls: live }],
    });
    const config = ws.file('pool.yaml', pool.yaml);
    ebb = new EbbCli(config);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await server?.stop('SIGKILL');
    ws.cleanup();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  /** OPTIONS over a new TLS connection verified against the test CA: the status and the certificate's CN. */
  async function probe(): Promise<{ status: number; cn: string }> {
    const host = pool.members[0]!.address;
    const socket: TLSSocket = connectTls({
      host,
      port: base,
      ca: readFileSync(certs.ca),
      servername: 'localhost',
    });
    const got: SipMessage[] = [];
    const parser = new SipStreamParser({ onMessage: (m) => got.push(m), onError: () => {} });
    socket.on('data', (d: Buffer) => parser.push(d));
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    assert.equal(socket.authorized, true, String(socket.authorizationError));
    const cn = String(socket.getPeerCertificate().subject.CN);
    const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
    socket.write(
      [
        `OPTIONS sip:${host}:${base};transport=tls SIP/2.0`,
        `Via: SIP/2.0/TLS 127.0.0.1:${socket.localPort};branch=${branch};rport`,
        'Max-Forwards: 70',
        `From: <sip:probe@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`,
        `To: <sip:${host}>`,
        `Call-ID: ${randomBytes(8).toString('hex')}`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    const deadline = Date.now() + 3000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    const res = got[0];
    assert.ok(res && res.kind === 'response', 'an answer over TLS');
    return { status: res.status, cn };
  }

  it('a verified TLS client is answered on 5061-style SIPS; baresip calls over TLS, the call is a session', async () => {
    assert.deepEqual(await probe(), { status: 200, cn: 'first' });
    const phone = await Baresip.start(join(ws.dir, 'phone'), base + 4, base + 6);
    phones.push(phone);
    phone.command('dial', `sip:conf@${pool.members[0]!.address}:${base};transport=tls`);
    await phone.waitForEvent('CALL_ESTABLISHED', 8000);
    await ebb.waitFor('m1', 'secure', (s) => s.sessions === 1, 'the TLS call counted');

    // Renewal: new files renamed in, then SIGHUP; the call on the old certificate goes on.
    for (const f of ['cert', 'key'] as const) {
      copyFileSync(certs.servers['second']![f], `${live[f]}.tmp`);
      renameSync(`${live[f]}.tmp`, live[f]);
    }
    server.child.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    let now = await probe();
    while (now.cn !== 'second' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      now = await probe();
    }
    assert.deepEqual(now, { status: 200, cn: 'second' }, 'new connections get the new certificate');
    assert.equal((await ebb.service('m1', 'secure')).sessions, 1, 'the live call is untouched');

    const from = phone.events.length;
    phone.command('hangup');
    await phone.waitForEvent('CALL_CLOSED', 5000, from);
    const done = await ebb.waitFor('m1', 'secure', (s) => s.sessions === 0, 'its BYE ended the call');
    assert.equal(done.forced, 0);
  });
});
