import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { Baresip } from './harness/sip-baresip.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { SipRegistrar } from './harness/sip-registrar.ts';

/**
 * SPEC §14 with real phones: baresip registered over TCP through a 3-member pool (found through the
 * pool's DNS). Pausing its member closes its flow within `closeSpread`; it registers again, through
 * another member (the registrar sees where from), while a call of another baresip on the same member
 * goes on to its BYE, whose flow closes after it.
 */
async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not reached: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('SIP registrations during a drain (baresip over TCP, 3 members)', () => {
  const ws = new Workspace('ebb-sip-reg-');
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  let registrar: SipRegistrar;
  const phones: Baresip[] = [];

  before(async () => {
    base = await freePortRange(12);
    registrar = await SipRegistrar.start();
    pool = sipPool({
      dir: ws.dir,
      members: 3,
      apiPort: base + 1,
      dnsPort: base + 2,
      services: [
        {
          id: 'reg',
          port: base,
          transports: ['tcp'],
          upstream: registrar.address,
          retryAfter: 5,
          closeSpread: '2s',
        },
      ],
    });
    const config = ws.file('pool.yaml', pool.yaml);
    ebb = new EbbCli(config);
    server = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
  });

  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await server?.stop('SIGKILL');
    await registrar?.stop();
    ws.cleanup();
  });

  it('pause: the registered phone’s flow closes within closeSpread and it re-registers through another member; a call on that member goes on to its BYE', async () => {
    const fqdn = pool.config.pool.fqdn;
    const registered = await Baresip.start(join(ws.dir, 'alice'), base + 4, base + 8, {
      account: `<sip:alice@${fqdn}:${base};transport=tcp>;regint=60;outbound="sip:${fqdn}:${base};transport=tcp"`,
      config: [`dns_server 127.0.0.1:${base + 2}`, 'sip_transports tcp'],
    });
    phones.push(registered);
    // It registers at start, before the test's control connection is up: read its log instead.
    await until(() => /200 OK \(\) \[1 binding\]/.test(registered.output), 'registered', 10_000);
    const first = registrar.registers.at(-1)!.from;
    const m = pool.members.find((x) => x.address === first);
    assert.ok(m, `registered through a member (${first})`);

    const caller = await Baresip.start(join(ws.dir, 'bob'), base + 6, base + 9);
    phones.push(caller);
    caller.command('dial', `sip:conf@${first}:${base};transport=tcp`);
    await caller.waitForEvent('CALL_ESTABLISHED', 8000);
    await ebb.waitFor(m.id, 'reg', (s) => s.sessions === 1 && s.flows === 2, 'a call and two flows');

    const pausedAt = Date.now();
    const pause = await ebb.run('pause', m.id, '--service', 'reg', '--reason', 'registration drain test');
    assert.equal(pause.code, 0, pause.stderr);
    await ebb.waitFor(m.id, 'reg', (s) => s.flows === 1, 'the idle flow closed', 5000);
    assert.ok(Date.now() - pausedAt < 2000 + 1500, 'within closeSpread (plus a status write)');

    const seen = registrar.registers.length;
    // RFC 5626 §4.5: after its only flow fails a client waits 30 s × 2 × a random 50–100 % (baresip's
    // libre does exactly that) — at most 60 s; then it resolves the pool's name again (DNS: paused
    // members are left out) and registers through another member.
    const deadline = Date.now() + 60_000 + 10_000;
    while (!registrar.registers.slice(seen).some((r) => r.from !== first)) {
      assert.ok(
        Date.now() < deadline,
        `no re-register through another member: ${JSON.stringify(registrar.registers)}`,
      );
      await new Promise((r) => setTimeout(r, 200));
    }
    const again = registrar.registers.slice(seen).find((r) => r.from !== first)!;
    console.log(`re-registered through ${again.from} ${again.at - pausedAt} ms after the pause`);

    const status = await ebb.service(m.id, 'reg');
    assert.equal(status.sessions, 1, 'the call goes on');
    assert.equal(status.drained, false);
    const from = caller.events.length;
    caller.command('hangup');
    await caller.waitForEvent('CALL_CLOSED', 5000, from);
    const drained = await ebb.waitFor(
      m.id,
      'reg',
      (s) => s.drained && s.flows === 0,
      'drained, no flow left',
    );
    assert.equal(drained.forced, 0);
  });
});
