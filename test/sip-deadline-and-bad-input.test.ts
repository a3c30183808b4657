import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { optionsStatus, request, sendRaw, type SipTarget } from './harness/sip-probe.ts';
import { Sipp } from './harness/sip-sipp.ts';

/**
 * SPEC §2 deadline and §8 bad input on the SIP front end, through `ebb up`:
 * - `voice` (udp + tcp, builtin:sip-uas) takes malformed and oversized messages and keeps answering;
 * - `held` (udp + tcp, SIPp callees) has calls nobody hangs up until a deadline ends them with a BYE to
 *   both parties carrying `Reason: SIP;cause=503;text="maintenance"`, counted as forced.
 */
describe('SIP front end: deadline and bad input', () => {
  const ws = new Workspace('ebb-sip-bad-');
  const sipps: Sipp[] = [];
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  const voice = (transport: 'udp' | 'tcp'): SipTarget => ({
    host: pool.members[0]!.address,
    port: base,
    transport,
  });

  before(async () => {
    base = await freePortRange(24);
    pool = sipPool({
      dir: ws.dir,
      apiPort: base + 2,
      dnsPort: base + 3,
      services: [
        { id: 'voice', port: base, transports: ['udp', 'tcp'], upstream: 'builtin:sip-uas' },
        {
          id: 'held',
          port: base + 1,
          transports: ['udp', 'tcp'],
          upstream: { udp: `127.0.0.1:${base + 4}`, tcp: `127.0.0.1:${base + 5}` },
        },
      ],
    });
    const config = ws.file('pool.yaml', pool.yaml);
    ebb = new EbbCli(config);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await server?.stop('SIGKILL');
    await Promise.all(sipps.map((s) => s.stop()));
    ws.cleanup();
  });

  it('malformed datagrams: answered 400 when the head can be read, else dropped; the front end goes on', async () => {
    const t = voice('udp');
    const garbage = await sendRaw(t, Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0d, 0x0a, 0x0d, 0x0a]), {
      waitMs: 300,
    });
    assert.equal(garbage.responses.length, 0);
    const badCSeq = request('OPTIONS', t, { user: 'x' }).replace('CSeq: 1 OPTIONS', 'CSeq: one OPTIONS');
    const r1 = await sendRaw(t, badCSeq);
    assert.equal(r1.responses[0]?.status, 400);
    const noVia = request('INVITE', t, { user: 'x' }).replace(/^Via:.*\r\n/m, '');
    assert.equal((await sendRaw(t, noVia, { waitMs: 300 })).responses.length, 0, 'no Via: nowhere to answer');
    const truncated = request('MESSAGE', t, { user: 'x', body: 'hello' }).replace(
      'Content-Length: 5',
      'Content-Length: 500',
    );
    assert.equal((await sendRaw(t, truncated)).responses[0]?.status, 400);
    const aResponse = 'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKx\r\n\r\n';
    assert.equal(
      (await sendRaw(t, aResponse, { waitMs: 300 })).responses.length,
      0,
      'a stray response is dropped',
    );
    assert.equal(await optionsStatus(t), 200);
  });

  it('the largest datagrams UDP carries (65,507 bytes: a 60 KB header line, noise) are dropped; nothing changes', async () => {
    // A 70 KB message cannot be one UDP datagram; these are the biggest that can. Their head cannot be
    // read (a line over 8 KB), so there is nothing to answer (docs/sip-parser.md).
    const t = voice('udp');
    const huge = request('INVITE', t, { user: 'x', headers: [`X-Filler: ${'a'.repeat(60_000)}`] });
    const padded = huge + 'b'.repeat(Math.max(0, 65_507 - huge.length));
    assert.equal((await sendRaw(t, padded, { waitMs: 500 })).responses.length, 0);
    const noise = Buffer.alloc(65_507, 0x41);
    assert.equal((await sendRaw(t, noise, { waitMs: 300 })).responses.length, 0);
    const manyHeaders = request('OPTIONS', t, {
      user: 'x',
      headers: Array.from({ length: 300 }, (_, i) => `X-H${i}: ${i}`),
    });
    assert.equal((await sendRaw(t, manyHeaders, { waitMs: 500 })).responses.length, 0);
    assert.equal(await optionsStatus(t), 200);
    assert.equal((await ebb.service('m1', 'voice')).sessions, 0);
  });

  it('a 70 KB message over TCP gets 413, the connection is closed, new connections are served', async () => {
    const t = voice('tcp');
    const body = 'v=0\r\n'.repeat(14_000);
    const r = await sendRaw(
      t,
      request('INVITE', t, { user: 'x', body, headers: ['Content-Type: application/sdp'] }),
      {
        waitMs: 3000,
        until: () => false,
      },
    );
    assert.equal(r.responses[0]?.status, 413, 'refused after its head, before the body is buffered');
    assert.equal(r.closed, true, 'after a framing error the connection is closed');
    const longLine = request('OPTIONS', t, { headers: [`X-Filler: ${'a'.repeat(70_000)}`] });
    const r3 = await sendRaw(t, longLine, { waitMs: 3000, until: () => false });
    assert.equal(r3.closed, true);
    const garbage = await sendRaw(t, 'NOT SIP AT ALL\r\nxx\r\n\r\n', { waitMs: 3000, until: () => false });
    assert.equal(garbage.closed, true);
    const noLength = request('OPTIONS', t).replace(/Content-Length: 0\r\n/, '');
    const r2 = await sendRaw(t, noLength, { waitMs: 3000, until: () => false });
    assert.equal(r2.responses[0]?.status, 400, 'Content-Length is mandatory on TCP');
    assert.equal(await optionsStatus(t), 200);
  });

  it('after all that, calls still go through on both transports', async () => {
    for (const [i, transport] of (['udp', 'tcp'] as const).entries()) {
      const calls = new Sipp({
        scenario: 'uac-call.xml',
        dir: ws.dir,
        localPort: base + 10 + i,
        remote: `${pool.members[0]!.address}:${base}`,
        transport,
        calls: 5,
        rate: 50,
        holdMs: 100,
        service: 'echo-test',
      });
      sipps.push(calls);
      const r = await calls.wait(15_000);
      assert.equal(r.code, 0, r.output.slice(-2000));
      assert.equal(r.successful, 5);
    }
    assert.equal(server.child.exitCode, null, 'ebb is still running');
  });

  it('a deadline ends held calls with a BYE to both parties (Reason 503 maintenance), counted as forced', async () => {
    const m1 = pool.members[0]!.address;
    const callees = (['udp', 'tcp'] as const).map(
      (transport, i) =>
        new Sipp({ scenario: 'uas-forced.xml', dir: ws.dir, localPort: base + 4 + i, transport, calls: 4 }),
    );
    sipps.push(...callees);
    await new Promise((r) => setTimeout(r, 300));
    const callers = (['udp', 'tcp'] as const).map(
      (transport, i) =>
        new Sipp({
          scenario: 'uac-held.xml',
          dir: ws.dir,
          localPort: base + 12 + i,
          remote: `${m1}:${base + 1}`,
          transport,
          calls: 4,
          rate: 20,
          service: 'hold',
        }),
    );
    sipps.push(...callers);
    await ebb.waitFor('m1', 'held', (s) => s.sessions === 8, '8 held calls');

    const pause = await ebb.run('pause', 'm1', '--service', 'held', '--deadline', '1s');
    assert.equal(pause.code, 0, pause.stderr);
    for (const [i, sipp] of [...callers, ...callees].entries()) {
      const r = await sipp.wait(15_000);
      assert.equal(r.code, 0, `party ${i} got a maintenance BYE for each call\n${r.output.slice(-2000)}`);
      assert.equal(r.successful, 4);
    }
    const held = await ebb.waitFor('m1', 'held', (s) => s.forced === 8, '8 forced');
    assert.equal(held.sessions, 0);
    assert.equal(held.drained, true);
    assert.equal(held.state, 'paused');
  });
});
