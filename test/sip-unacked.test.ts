import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TIMER_64T1_MS } from '../src/sip/index.ts';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { Sipp } from './harness/sip-sipp.ts';

/**
 * Issue 16 fault 7: INVITEs whose 2xx is never ACKed must not hold a drain. RFC 3261 §13.3.1.4: the
 * session ends 64*T1 after the 2xx; Ebb counts it ended then and sends the BYE the UAS would (here the
 * built-in callee, which, like the servers the chaos run met, retransmits its 2xx and then gives up
 * silently). SIPp calls and never ACKs; it expects that BYE.
 */
describe('SIP front end: a 2xx never ACKed ends the call after 64*T1', () => {
  const ws = new Workspace('ebb-sip-noack-');
  const sipps: Sipp[] = [];
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;

  before(async () => {
    base = await freePortRange(8);
    pool = sipPool({
      dir: ws.dir,
      apiPort: base + 1,
      dnsPort: base + 2,
      services: [{ id: 'voice', port: base, transports: ['udp', 'tcp'], upstream: 'builtin:sip-uas' }],
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

  it('udp and tcp: unACKed calls are sessions until 64*T1, then each caller gets a BYE; the paused member drains', async () => {
    const m1 = pool.members[0]!.address;
    const counts = { udp: 12, tcp: 6 };
    const started = Date.now();
    for (const transport of ['udp', 'tcp'] as const) {
      sipps.push(
        new Sipp({
          scenario: 'uac-no-ack.xml',
          dir: ws.dir,
          localPort: base + (transport === 'udp' ? 4 : 5),
          remote: `${m1}:${base}`,
          transport,
          calls: counts[transport],
          rate: 50,
          service: 'conf',
        }),
      );
    }
    const total = counts.udp + counts.tcp;
    await ebb.waitFor('m1', 'voice', (s) => s.sessions === total, `${total} unACKed calls counted`);
    const pause = await ebb.run('pause', 'm1', '--service', 'voice', '--reason', 'no-ack test');
    assert.equal(pause.code, 0, pause.stderr);
    const paused = await ebb.service('m1', 'voice');
    assert.equal(paused.drained, false, 'the unACKed calls still hold the drain');

    const drained = await ebb.waitFor(
      'm1',
      'voice',
      (s) => s.sessions === 0 && s.drained,
      'drained once the ACKs are overdue',
      TIMER_64T1_MS + 10_000,
    );
    const took = Date.now() - started;
    assert.ok(took >= TIMER_64T1_MS - 1000, `not before 64*T1 (${took} ms)`);
    assert.equal(drained.forced, 0, 'counted as ended, not forced');
    assert.equal((await ebb.status()).members[0]!.readyForOffline, true);
    for (const s of sipps) {
      const r = await s.wait(15_000);
      assert.equal(
        r.code,
        0,
        `each caller got the BYE with cause 408\n${s.errors()}\n${r.output.slice(-1500)}`,
      );
    }
  });
});
