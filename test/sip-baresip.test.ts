import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { Baresip } from './harness/sip-baresip.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';

/**
 * A real SIP phone (baresip) calling through `ebb up` to the built-in callee: the call is established and
 * counted, its hang-up ends the session; a paused front end refuses it (503) or redirects it (302) to an
 * accepting member; a deadline ends it with a BYE (SPEC §2, §4.2).
 */
describe('baresip through the SIP front end', () => {
  const ws = new Workspace('ebb-sip-baresip-');
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  let phone: Baresip;
  const uri = (member: number, port: number, tcp = false) =>
    `sip:conf@${pool.members[member]!.address}:${port}${tcp ? ';transport=tcp' : ''}`;

  /** Dials and waits for the call to be established or closed; returns the closing event, if any. */
  const dial = async (target: string) => {
    const from = phone.events.length;
    phone.command('dial', target);
    const outcome = await Promise.race([
      phone.waitForEvent('CALL_ESTABLISHED', 8000, from).then(() => 'established' as const),
      phone.waitForEvent('CALL_CLOSED', 8000, from).then((e) => e),
    ]);
    return { from, outcome };
  };

  before(async () => {
    base = await freePortRange(8);
    pool = sipPool({
      dir: ws.dir,
      apiPort: base + 2,
      dnsPort: base + 3,
      services: [
        {
          id: 'frontend',
          port: base,
          transports: ['udp', 'tcp'],
          upstream: 'builtin:sip-uas',
          retryAfter: 5,
        },
        {
          id: 'attendant',
          port: base + 1,
          transports: ['udp'],
          upstream: 'builtin:sip-uas',
          reroute: 'redirect',
        },
      ],
    });
    const config = ws.file('pool.yaml', pool.yaml);
    ebb = new EbbCli(config);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    phone = await Baresip.start(join(ws.dir, 'baresip'), base + 4, base + 6); // base + 5: its TLS
  });

  after(async () => {
    await phone?.stop();
    await server?.stop('SIGKILL');
    ws.cleanup();
  });

  for (const tcp of [false, true]) {
    it(`a call over ${tcp ? 'TCP' : 'UDP'} is established, counted as a session, and its hang-up ends it`, async () => {
      const before = await ebb.service('m1', 'frontend');
      const { from, outcome } = await dial(uri(0, base, tcp));
      assert.equal(outcome, 'established', JSON.stringify(outcome));
      await ebb.waitFor('m1', 'frontend', (s) => s.sessions === 1, 'the call is a session');
      phone.command('hangup');
      await phone.waitForEvent('CALL_CLOSED', 5000, from);
      const after = await ebb.waitFor('m1', 'frontend', (s) => s.sessions === 0, 'session ended');
      assert.equal(after.accepted - before.accepted, 1);
      assert.equal(after.forced, 0);
    });
  }

  it('a paused front end refuses the call with 503', async () => {
    assert.equal((await ebb.run('pause', 'm1', '--service', 'frontend')).code, 0);
    const before = await ebb.service('m1', 'frontend');
    const { outcome } = await dial(uri(0, base));
    assert.notEqual(outcome, 'established');
    assert.match(JSON.stringify(outcome), /503/);
    const after = await ebb.service('m1', 'frontend');
    assert.equal(after.accepted, before.accepted, 'a refused call is not a session');
    assert.equal(after.sessions, 0);
    assert.equal((await ebb.run('resume', 'm1', '--service', 'frontend')).code, 0);
  });

  it('with reroute: redirect, a paused front end sends the call to an accepting member (302)', async () => {
    assert.equal((await ebb.run('pause', 'm1', '--service', 'attendant')).code, 0);
    const { from, outcome } = await dial(uri(0, base + 1));
    assert.equal(outcome, 'established', JSON.stringify(outcome));
    const m2 = await ebb.waitFor('m2', 'attendant', (s) => s.sessions === 1, 'the call landed on m2');
    assert.equal(m2.accepted, 1);
    assert.equal((await ebb.service('m1', 'attendant')).accepted, 0);
    phone.command('hangup');
    await phone.waitForEvent('CALL_CLOSED', 5000, from);
    await ebb.waitFor('m2', 'attendant', (s) => s.sessions === 0, 'ended');
  });

  it('a deadline ends the call with a BYE and counts it as forced', async () => {
    const { from, outcome } = await dial(uri(1, base));
    assert.equal(outcome, 'established', JSON.stringify(outcome));
    await ebb.waitFor('m2', 'frontend', (s) => s.sessions === 1, 'the call is a session');
    const pause = await ebb.run('pause', 'm2', '--service', 'frontend', '--deadline', '1s');
    assert.equal(pause.code, 0, pause.stderr);
    const closed = await phone.waitForEvent('CALL_CLOSED', 8000, from);
    assert.ok(closed, 'baresip saw the call end');
    const m2 = await ebb.waitFor('m2', 'frontend', (s) => s.forced === 1, 'forced 1');
    assert.equal(m2.sessions, 0);
    assert.equal(m2.drained, true);
  });
});
