import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { Kamailio } from './harness/sip-kamailio.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { Sipp } from './harness/sip-sipp.ts';

/**
 * SPEC §4.3: a Kamailio dispatcher (test/kamailio/dispatcher.cfg, OPTIONS probing every second) in front
 * of three Ebb members. Pausing one in the middle of a SIPp run fails no call: the probe's 503 takes it
 * out of the set, and the INVITEs that reach it before that get 503 and fail over (ds_next_dst).
 */
describe('Kamailio dispatcher in front of Ebb SIP front ends', () => {
  const ws = new Workspace('ebb-sip-kamailio-');
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  let kamailio: Kamailio | undefined;
  let caller: Sipp | undefined;

  before(async () => {
    base = await freePortRange(16);
    pool = sipPool({
      dir: ws.dir,
      members: 3,
      apiPort: base + 1,
      dnsPort: base + 2,
      services: [{ id: 'frontend', port: base, transports: ['udp'], upstream: 'builtin:sip-uas' }],
    });
    const config = ws.file('pool.yaml', pool.yaml);
    ebb = new EbbCli(config);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    kamailio = await Kamailio.start(
      ws.dir,
      { address: '127.0.0.1', port: base + 3 },
      pool.members.map((m) => ({ host: m.address, port: base })),
    );
  });

  after(async () => {
    await caller?.stop();
    await kamailio?.stop();
    await server?.stop('SIGKILL');
    ws.cleanup();
  });

  it('pausing a member mid-run fails no call; the paused member drains and gets no new calls', async () => {
    const rate = 40;
    const calls = 440;
    caller = new Sipp({
      scenario: 'uac-call.xml',
      dir: ws.dir,
      localPort: base + 4,
      remote: `127.0.0.1:${base + 3}`,
      transport: 'udp',
      calls,
      rate,
      holdMs: 1500,
      service: 'frontend',
    });
    await ebb.waitFor('m1', 'frontend', (s) => s.accepted >= 20, 'm1 takes calls', 10_000);
    await new Promise((r) => setTimeout(r, 2000));

    const pause = await ebb.run('pause', 'm1', '--service', 'frontend', '--reason', 'kamailio test');
    assert.equal(pause.code, 0, pause.stderr);
    // The dispatcher probes every second; give it two rounds, then m1 must take nothing new.
    await new Promise((r) => setTimeout(r, 2000));
    const afterProbe = await ebb.service('m1', 'frontend');

    const result = await caller.wait(40_000);
    assert.equal(result.failed, 0, `no call failed\n${caller.errors()}`);
    assert.equal(result.code, 0, result.output.slice(-3000));
    assert.equal(result.successful, calls);

    const m1 = await ebb.waitFor('m1', 'frontend', (s) => s.sessions === 0 && s.drained, 'm1 drained');
    assert.equal(m1.accepted, afterProbe.accepted, 'no new call reached m1 once the dispatcher saw its 503');
    assert.equal(m1.forced, 0);
    const s = await ebb.status();
    const accepted = s.members.map((m) => m.services[0]!.accepted);
    assert.ok(accepted[1]! > 0 && accepted[2]! > 0, `the others took the calls: ${accepted.join(', ')}`);
    assert.equal(
      accepted.reduce((a, b) => a + b, 0),
      calls,
      'every call was one session on exactly one member',
    );
  });
});
