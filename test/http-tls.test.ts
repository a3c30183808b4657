/**
 * TLS on the http listener (SPEC §11): HTTPS, WSS and h2 by ALPN with a certificate from a CA made at
 * test time by openssl; checked with `curl --cacert`, `openssl s_client` and Node's TLS client. The files
 * are re-read when they change or on SIGHUP: new connections get the new certificate, live ones are
 * untouched; a bad pair keeps the one in use; a missing file is an error naming the field.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { connect as connectHttp2 } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as connectTls, type PeerCertificate } from 'node:tls';
import WebSocket from 'ws';
import { HttpListener } from '../src/listeners/http/index.ts';
import { ReloadingSecureContext, TlsCredentialsError, TlsFileError } from '../src/tls/index.ts';
import { freePort } from './harness/ports.ts';
import { eventually, makeCertificates, run, type TestCertificates } from './http-support.ts';

const host = '127.0.0.1';

/** The CN of the certificate a new TLS connection is shown. */
function servedName(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host, port, ca: readFileSync(ca), servername: 'localhost' }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate();
      assert.equal(socket.authorized, true, String(socket.authorizationError));
      socket.end();
      resolve(String(cert.subject.CN));
    });
    socket.on('error', reject);
  });
}

/** Replaces a file the way renewal tools do: a new file renamed over the old one. */
function replaceFile(from: string, to: string): void {
  copyFileSync(from, `${to}.tmp`);
  renameSync(`${to}.tmp`, to);
}

describe('http listener: TLS', () => {
  let certs: TestCertificates;
  let live: { cert: string; key: string };
  let listener: HttpListener;
  let port = 0;
  const reloadErrors: string[] = [];
  before(async () => {
    certs = await makeCertificates(mkdtempSync(join(tmpdir(), 'ebb-tls-')), ['first', 'second']);
    // The files the listener reads, replaced during the tests.
    live = { cert: join(certs.dir, 'live.pem'), key: join(certs.dir, 'live.key') };
    copyFileSync(certs.servers['first']!.cert, live.cert);
    copyFileSync(certs.servers['first']!.key, live.key);
    port = await freePort();
    listener = new HttpListener({
      host,
      port,
      upstream: 'builtin',
      member: 'fe01',
      tls: live,
      onError: (err) => reloadErrors.push(err.code),
    });
    await listener.open(false);
  });
  after(async () => {
    await listener.destroy();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it('serves HTTPS that curl verifies with --cacert, over HTTP/1.1 and h2 by ALPN', async () => {
    const url = `https://localhost:${port}/healthz`;
    const resolve = `localhost:${port}:${host}`;
    const h1 = await run('curl', [
      '-sS',
      '--cacert',
      certs.ca,
      '--resolve',
      resolve,
      '--http1.1',
      '-w',
      '\n%{http_version}',
      url,
    ]);
    assert.equal(h1.code, 0, h1.stderr);
    assert.deepEqual(h1.stdout.split('\n'), ['{"status":"ok","member":"fe01"}', '', '1.1']);
    const h2 = await run('curl', [
      '-sS',
      '--cacert',
      certs.ca,
      '--resolve',
      resolve,
      '--http2',
      '-w',
      '\n%{http_version}',
      url,
    ]);
    assert.equal(h2.code, 0, h2.stderr);
    assert.equal(h2.stdout.split('\n').at(-1), '2');
    const headers = await run('curl', [
      '-sS',
      '--cacert',
      certs.ca,
      '--resolve',
      resolve,
      `https://localhost:${port}/headers`,
    ]);
    assert.equal(
      (JSON.parse(headers.stdout) as { headers: Record<string, string> }).headers['x-forwarded-proto'],
      'https',
    );
    // Without the CA curl refuses: the certificate is really checked.
    assert.notEqual((await run('curl', ['-sS', '--resolve', resolve, url])).code, 0);
  });

  it('openssl s_client verifies the chain and agrees on h2 by ALPN', async () => {
    const r = await run('sh', [
      '-c',
      `echo | openssl s_client -connect ${host}:${port} -servername localhost -CAfile ${certs.ca} -alpn h2,http/1.1 2>&1`,
    ]);
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
    assert.match(r.stdout, /ALPN protocol: h2/);
    assert.match(r.stdout, /subject=CN ?= ?first/);
  });

  it("Node's TLS, HTTP/2 and WebSocket (wss) clients", async () => {
    assert.equal(await servedName(port, certs.ca), 'first');
    const session = connectHttp2(`https://${host}:${port}`, { ca: readFileSync(certs.ca) });
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/healthz' });
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString()));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
    });
    assert.equal(JSON.parse(body).member, 'fe01');
    session.close();
    const ws = new WebSocket(`wss://${host}:${port}/ws`, { ca: readFileSync(certs.ca) });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send('over tls');
    assert.equal(String(await new Promise((resolve) => ws.once('message', resolve))), 'over tls');
    ws.close();
  });

  it('a changed certificate is used by new connections; a live WebSocket is untouched', async () => {
    const ws = new WebSocket(`wss://${host}:${port}/ws`, { ca: readFileSync(certs.ca) });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const reloads = listener.stats().tlsReloads;
    replaceFile(certs.servers['second']!.key, live.key);
    replaceFile(certs.servers['second']!.cert, live.cert);
    await eventually(() => listener.stats().tlsReloads === reloads + 1, 'certificate reloaded', 5000);
    assert.equal(await servedName(port, certs.ca), 'second');
    ws.send('still the old session');
    assert.equal(
      String(await new Promise((resolve) => ws.once('message', resolve))),
      'still the old session',
    );
    ws.close();
  });

  it('a pair that does not fit (key of another certificate) keeps the one in use and is reported', async () => {
    const reloads = listener.stats().tlsReloads;
    reloadErrors.length = 0;
    replaceFile(certs.servers['first']!.cert, live.cert); // the key is still the second's
    await eventually(() => reloadErrors.includes('EBB_TLS_CREDENTIALS'), 'mismatch reported', 5000);
    assert.equal(await servedName(port, certs.ca), 'second');
    replaceFile(certs.servers['first']!.key, live.key);
    await eventually(() => listener.stats().tlsReloads === reloads + 1, 'reloaded once both fit', 5000);
    assert.equal(await servedName(port, certs.ca), 'first');
  });

  it('SIGHUP re-reads the files', async () => {
    const source = await ReloadingSecureContext.open({ files: certs.servers['first']!, watch: false });
    try {
      copyFileSync(certs.servers['first']!.cert, join(certs.dir, 'hup.pem'));
      copyFileSync(certs.servers['first']!.key, join(certs.dir, 'hup.key'));
      const hup = await ReloadingSecureContext.open({
        files: { cert: join(certs.dir, 'hup.pem'), key: join(certs.dir, 'hup.key') },
        watch: false,
      });
      try {
        copyFileSync(certs.servers['second']!.cert, join(certs.dir, 'hup.pem'));
        copyFileSync(certs.servers['second']!.key, join(certs.dir, 'hup.key'));
        assert.equal(hup.credentials.subject, 'CN=first');
        process.kill(process.pid, 'SIGHUP');
        await eventually(() => hup.reloads === 1, 'reloaded on SIGHUP');
        assert.equal(hup.credentials.subject, 'CN=second');
        assert.equal(source.reloads, 0, 'unchanged files are not reloaded');
      } finally {
        hup.close();
      }
    } finally {
      source.close();
    }
  });

  it('a missing file is an error naming the field; a key that does not fit is refused at open', async () => {
    const missing = new HttpListener({
      host,
      port: await freePort(),
      upstream: 'builtin',
      tls: { cert: join(certs.dir, 'nope.pem'), key: certs.servers['first']!.key },
    });
    await assert.rejects(missing.open(false), (err: unknown) => {
      assert.ok(err instanceof TlsFileError);
      assert.equal(err.code, 'EBB_TLS_FILE');
      assert.equal(err.field, 'cert');
      assert.match(err.message, /^tls\.cert: cannot read .*nope\.pem: ENOENT/);
      return true;
    });
    assert.equal(missing.state, 'closed');
    await assert.rejects(
      ReloadingSecureContext.open({
        files: { cert: certs.servers['first']!.cert, key: certs.servers['second']!.key },
      }),
      (err: unknown) => err instanceof TlsCredentialsError && err.code === 'EBB_TLS_CREDENTIALS',
    );
  });
});
