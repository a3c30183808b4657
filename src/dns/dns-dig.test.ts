/** The server against a real resolver tool: BIND's dig (Debian `dnsutils`, installed by scripts/test.sh). */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DnsServer } from './dns-server.ts';
import { FQDN, member, sampleView } from './dns-test-support.ts';

const run = promisify(execFile);

function digPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v dig'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const dig = digPath();
const skip =
  dig === null ? 'dig is not installed (apt-get install dnsutils); scripts/test.sh installs it' : false;

describe('DnsServer with dig', { skip }, () => {
  let server: DnsServer;
  let view = sampleView();

  before(async () => {
    server = new DnsServer({ listen: { host: '127.0.0.1', port: 0 }, view: () => view });
    await server.start();
  });
  after(() => server.close());

  async function digOut(...args: string[]): Promise<string> {
    const { stdout } = await run(
      dig!,
      ['@127.0.0.1', '-p', String(server.port), '+time=2', '+tries=1', ...args],
      {
        timeout: 10_000,
      },
    );
    return stdout;
  }

  it('answers the pool name over UDP and TCP, authoritatively', async () => {
    for (const transport of ['+notcp', '+tcp']) {
      const out = await digOut(transport, '+norecurse', FQDN, 'A');
      assert.match(out, /status: NOERROR/);
      assert.match(out, /flags: qr aa;/);
      const addresses = [...out.matchAll(/^\S+\s+\d+\s+IN\s+A\s+(\S+)$/gm)].map((m) => m[1]).sort();
      assert.deepEqual(addresses, ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    }
  });

  it('answers SRV with targets and their addresses', async () => {
    const short = await digOut('+short', `_frontend._udp.${FQDN}`, 'SRV');
    assert.deepEqual(
      short.trim().split('\n').sort(),
      ['fe01', 'fe02', 'fe03'].map((m) => `10 10 5060 ${m}.${FQDN}.`),
    );
    const full = await digOut(`_frontend._udp.${FQDN}`, 'SRV');
    assert.match(
      full,
      new RegExp(`ADDITIONAL SECTION:[^]*^fe01\\.pool1\\.ebb\\.test\\.\\s+5\\s+IN\\s+AAAA\\s+fd00::11$`, 'm'),
    );
  });

  it('gives NXDOMAIN with the SOA, and REFUSED outside the zone', async () => {
    const nx = await digOut(`nobody.${FQDN}`, 'A');
    assert.match(nx, /status: NXDOMAIN/);
    assert.match(
      nx,
      new RegExp(
        `AUTHORITY SECTION:\\n${FQDN.replace(/\./g, '\\.')}\\.\\s+5\\s+IN\\s+SOA\\s+ns\\.${FQDN.replace(/\./g, '\\.')}\\.`,
      ),
    );
    assert.match(await digOut('example.com', 'A'), /status: REFUSED/);
  });

  it('falls back to TCP by itself when the UDP answer is truncated', async () => {
    view = sampleView({
      members: Array.from({ length: 80 }, (_, i) => member(`m${i}`, [`10.0.1.${i + 1}`])),
    });
    try {
      const out = await digOut('+bufsize=512', FQDN, 'A');
      assert.match(out, /Truncated, retrying in TCP mode/);
      assert.equal([...out.matchAll(/^\S+\s+\d+\s+IN\s+A\s+/gm)].length, 80);
    } finally {
      view = sampleView();
    }
  });

  it('talks EDNS: our payload size, and BADVERS for version 1', async () => {
    assert.match(await digOut('+edns=0', FQDN, 'A'), /EDNS: version: 0, flags:; udp: 1232/);
    assert.match(await digOut('+edns=1', '+noednsnegotiation', FQDN, 'A'), /status: BADVERS/);
  });
});
