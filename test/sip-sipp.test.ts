import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { optionsStatus } from './harness/sip-probe.ts';
import { Sipp } from './harness/sip-sipp.ts';

/**
 * The SIP front end with real peers on both sides: SIPp calls through `ebb up` to SIPp answering
 * (SPEC §1, §2, §4.2), over UDP and over TCP. Pool: 2 members × service `voice` (sip udp + tcp).
 */
describe('SIP front end with SIPp as caller and callee', () => {
  const ws = new Workspace('ebb-sip-sipp-');
  const sipps: Sipp[] = [];
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  let uas: Record<'udp' | 'tcp', Sipp>;
  let nextPort: number;
  const sipp = (options: ConstructorParameters<typeof Sipp>[0]) => {
    const s = new Sipp(options);
    sipps.push(s);
    return s;
  };

  before(async () => {
    base = await freePortRange(24);
    nextPort = base + 5;
    uas = {
      udp: sipp({ scenario: 'uas-answer.xml', dir: ws.dir, localPort: base + 3, transport: 'udp' }),
      tcp: sipp({ scenario: 'uas-answer.xml', dir: ws.dir, localPort: base + 4, transport: 'tcp' }),
    };
    pool = sipPool({
      dir: ws.dir,
      apiPort: base + 1,
      dnsPort: base + 2,
      services: [
        {
          id: 'voice',
          port: base,
          transports: ['udp', 'tcp'],
          upstream: { udp: `127.0.0.1:${base + 3}`, tcp: `127.0.0.1:${base + 4}` },
          retryAfter: 7,
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

  for (const transport of ['udp', 'tcp'] as const) {
    it(`${transport}: calls are sessions; after pause established calls complete, new ones get 503, OPTIONS 200 → 503, drained at the last BYE`, async () => {
      const m1 = { host: pool.members[0]!.address, port: base, transport };
      const m2 = { host: pool.members[1]!.address, port: base, transport };
      const calls = transport === 'udp' ? 20 : 10;
      assert.equal(await optionsStatus(m1), 200, 'OPTIONS to an accepting front end');
      const before = await ebb.service('m1', 'voice');

      const held = sipp({
        scenario: 'uac-call.xml',
        dir: ws.dir,
        localPort: nextPort++,
        remote: `${m1.host}:${m1.port}`,
        transport,
        calls,
        rate: 20,
        holdMs: 6000,
        service: 'conf',
      });
      await ebb.waitFor('m1', 'voice', (s) => s.sessions === calls, `${calls} calls counted`);

      const pause = await ebb.run('pause', 'm1', '--service', 'voice', '--reason', 'sip test');
      assert.equal(pause.code, 0, pause.stderr);
      assert.equal(await optionsStatus(m1), 503, 'OPTIONS to a paused front end');
      assert.equal(await optionsStatus(m2), 200, 'the other member still accepts');

      const refused = sipp({
        scenario: 'uac-refused.xml',
        dir: ws.dir,
        localPort: nextPort++,
        remote: `${m1.host}:${m1.port}`,
        transport,
        calls: 10,
        rate: 50,
        service: 'conf',
      });
      const r = await refused.wait(15_000);
      assert.equal(r.code, 0, `every new call gets 503 with Retry-After\n${r.output.slice(-2000)}`);
      assert.equal(r.successful, 10);

      // Counts reach the store coalesced (every 50 ms on SQLite): wait for the refusals to be written.
      const paused = await ebb.waitFor('m1', 'voice', (s) => s.refused >= 10, '10 refusals counted');
      assert.equal(paused.state, 'paused');
      assert.equal(paused.sessions, calls, 'refused calls are not sessions');
      assert.ok(paused.refused >= 10, `the 503s are counted as refused (${paused.refused})`);
      assert.equal(paused.drained, false);

      const h = await held.wait(20_000);
      assert.equal(h.code, 0, `every established call completes\n${h.output.slice(-2000)}`);
      assert.equal(h.successful, calls);
      assert.equal(h.failed, 0);

      const drained = await ebb.waitFor('m1', 'voice', (s) => s.sessions === 0 && s.drained, 'drained');
      assert.equal(drained.forced, 0);
      assert.equal(drained.accepted - before.accepted, calls, 'each call opened exactly one session');
      assert.equal((await ebb.status()).members[0]!.readyForOffline, true);
      // The callee saw every call end (its own count, not SIPp's caller-side view).
      await waitUntil(() => uas[transport].stats().successful >= calls, 'callee counted the calls');

      const resume = await ebb.run('resume', 'm1', '--service', 'voice');
      assert.equal(resume.code, 0, resume.stderr);
      assert.equal(await optionsStatus(m1), 200);
    });
  }

  it('udp and tcp: REGISTER to a paused member gets 503 with the short Retry-After; calls to the other member fail none (SPEC §14)', async () => {
    const m1 = pool.members[0]!.address;
    const m2 = pool.members[1]!.address;
    const pause = await ebb.run('pause', 'm1', '--service', 'voice', '--reason', 'register test');
    assert.equal(pause.code, 0, pause.stderr);
    try {
      const elsewhere = sipp({
        scenario: 'uac-call.xml',
        dir: ws.dir,
        localPort: nextPort++,
        remote: `${m2}:${base}`,
        transport: 'udp',
        calls: 10,
        rate: 20,
        holdMs: 500,
        service: 'conf',
      });
      const registers = (['udp', 'tcp'] as const).map((transport) =>
        sipp({
          scenario: 'uac-register-refused.xml',
          dir: ws.dir,
          localPort: nextPort++,
          remote: `${m1}:${base}`,
          transport,
          calls: 10,
          rate: 50,
        }),
      );
      for (const r of registers) {
        const res = await r.wait(15_000);
        assert.equal(
          res.code,
          0,
          `every REGISTER got 503 + a short Retry-After\n${r.errors()}\n${res.output.slice(-1500)}`,
        );
        assert.equal(res.successful, 10);
      }
      const calls = await elsewhere.wait(20_000);
      assert.equal(calls.code, 0, `calls to m2 succeed\n${calls.output.slice(-1500)}`);
      assert.equal(calls.failed, 0);
      assert.equal(calls.successful, 10);
    } finally {
      const resume = await ebb.run('resume', 'm1', '--service', 'voice');
      assert.equal(resume.code, 0, resume.stderr);
    }
  });
});

async function waitUntil(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not reached: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
