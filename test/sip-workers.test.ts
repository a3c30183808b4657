import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { freePortRange } from './harness/ports.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { optionsStatus } from './harness/sip-probe.ts';
import { Sipp } from './harness/sip-sipp.ts';

/**
 * `agent: { workers: 2 }` with a SIP proxy (SPEC §13): each SIP listener of m1 runs on two threads
 * sharing its port. SIPp calls from a socket (UDP) or connection (TCP) per call, so the kernel spreads
 * them over both threads; SIPp answering upstream sends every response to the thread whose Via it is.
 * Calls all complete, status counts exactly the calls up, a pause answers 503 on every thread while the
 * calls go on, and the member drains at the last BYE.
 */
describe('SIP front end on two worker threads, SIPp as caller and callee', () => {
  const ws = new Workspace('ebb-sip-workers-');
  const sipps: Sipp[] = [];
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let server: EbbServer;
  let nextPort: number;
  const sipp = (options: ConstructorParameters<typeof Sipp>[0]) => {
    const s = new Sipp(options);
    sipps.push(s);
    return s;
  };

  before(async () => {
    base = await freePortRange(16);
    nextPort = base + 5;
    sipp({ scenario: 'uas-answer.xml', dir: ws.dir, localPort: base + 3, transport: 'udp' });
    sipp({ scenario: 'uas-answer.xml', dir: ws.dir, localPort: base + 4, transport: 'tcp' });
    pool = sipPool({
      dir: ws.dir,
      apiPort: base + 1,
      dnsPort: base + 2,
      workers: 2,
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
    it(`${transport}: every call completes and is counted once; a pause answers 503 on both threads; drained at the last BYE`, async () => {
      const m1 = { host: pool.members[0]!.address, port: base, transport };
      const calls = transport === 'udp' ? 40 : 20;
      const before = await ebb.service('m1', 'voice');
      assert.equal(before.sessions, 0);

      const held = sipp({
        scenario: 'uac-call.xml',
        dir: ws.dir,
        localPort: nextPort++,
        remote: `${m1.host}:${m1.port}`,
        transport,
        socketPerCall: true,
        calls,
        rate: 40,
        holdMs: 8000,
        service: 'conf',
      });
      const up = await ebb.waitFor('m1', 'voice', (s) => s.sessions >= calls, `${calls} calls counted`);
      assert.equal(up.sessions, calls, 'status counts the calls up, no more');

      const pause = await ebb.run('pause', 'm1', '--service', 'voice', '--reason', 'sip workers test');
      assert.equal(pause.code, 0, pause.stderr);
      assert.equal(await optionsStatus(m1), 503, 'OPTIONS to a paused front end');

      // New calls from many ports reach both threads: every one gets 503 with Retry-After.
      const refused = sipp({
        scenario: 'uac-refused.xml',
        dir: ws.dir,
        localPort: nextPort++,
        remote: `${m1.host}:${m1.port}`,
        transport,
        socketPerCall: true,
        calls: 20,
        rate: 50,
        service: 'conf',
      });
      const r = await refused.wait(15_000);
      assert.equal(r.code, 0, `every new call gets 503\n${refused.errors()}\n${r.output.slice(-1500)}`);
      assert.equal(r.successful, 20);
      const paused = await ebb.waitFor('m1', 'voice', (s) => s.refused - before.refused >= 20, 'refusals');
      assert.equal(paused.sessions, calls, 'refused calls are not sessions; held calls go on');

      const h = await held.wait(30_000);
      assert.equal(h.code, 0, `every established call completes\n${held.errors()}\n${h.output.slice(-2000)}`);
      assert.equal(h.successful, calls);
      assert.equal(h.failed, 0);

      const drained = await ebb.waitFor('m1', 'voice', (s) => s.sessions === 0 && s.drained, 'drained');
      assert.equal(drained.forced, 0);
      assert.equal(drained.accepted - before.accepted, calls, 'each call opened exactly one session');

      const resume = await ebb.run('resume', 'm1', '--service', 'voice');
      assert.equal(resume.code, 0, resume.stderr);
      assert.equal(await optionsStatus(m1), 200);
    });
  }
});
