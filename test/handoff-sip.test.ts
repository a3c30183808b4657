import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace } from './harness/ebb-process.ts';
import { keepTcpMigrateReq } from './harness/migrate-req.ts';
import { freePortRange } from './harness/ports.ts';
import { EbbCli } from './harness/sip-ebb.ts';
import { sipPool, type SipPool } from './harness/sip-pool.ts';
import { Sipp } from './harness/sip-sipp.ts';

/**
 * SPEC §13 with SIP calls: a second `ebb up` replaces the running one while SIPp calls are up through it.
 * SIPp sends its ACKs and BYEs to the address on its command line, the shared port, which the new
 * process holds once the old one yields: the new one routes them and tells the old one (a note over the
 * control socket), which counts the ends of its calls. Every call completes, new calls go through the
 * new process, and the old one exits once its last call ended, none forced.
 */
describe('hand-off with SIPp calls up (udp and tcp)', () => {
  const ws = new Workspace('ebb-handoff-sip-');
  const sipps: Sipp[] = [];
  const servers: EbbServer[] = [];
  let base: number;
  let pool: SipPool;
  let ebb: EbbCli;
  let config: string;
  let nextPort: number;
  const sipp = (options: ConstructorParameters<typeof Sipp>[0]) => {
    const s = new Sipp(options);
    sipps.push(s);
    return s;
  };

  let restoreMigrateReq: () => void = () => {};
  before(async () => {
    restoreMigrateReq = keepTcpMigrateReq();
    base = await freePortRange(16);
    nextPort = base + 5;
    sipp({ scenario: 'uas-answer.xml', dir: ws.dir, localPort: base + 3, transport: 'udp' });
    sipp({ scenario: 'uas-answer.xml', dir: ws.dir, localPort: base + 4, transport: 'tcp' });
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
        },
      ],
    });
    config = ws.file('pool.yaml', pool.yaml);
    ebb = new EbbCli(config);
    servers.push(await EbbServer.start(['up', config], /is up/, { cwd: ws.dir }));
  });

  after(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    await Promise.all(sipps.map((s) => s.stop()));
    ws.cleanup();
    restoreMigrateReq();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`${transport}: calls up across the hand-off complete and are counted by the old process; new calls reach the new one`, async () => {
      const m1 = { host: pool.members[0]!.address, port: base, transport };
      const calls = 10;
      const held = sipp({
        scenario: 'uac-call.xml',
        dir: ws.dir,
        localPort: nextPort++,
        remote: `${m1.host}:${m1.port}`,
        transport,
        calls,
        rate: 40,
        holdMs: 5000,
        service: 'conf',
      });
      await ebb.waitFor('m1', 'voice', (s) => s.sessions >= calls, `${calls} calls up`);

      const old = servers.at(-1)!;
      const successor = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
      servers.push(successor);
      await old.waitForOutput(new RegExp(`pid ${successor.pid} took over`), 5000);
      const during = await ebb.service('m1', 'voice');
      assert.equal(during.sessions, calls, 'status counts the old process calls under the service');

      // Brand-new calls during the overlap: the new process takes them, none is refused.
      const fresh = sipp({
        scenario: 'uac-call.xml',
        dir: ws.dir,
        localPort: nextPort++,
        remote: `${m1.host}:${m1.port}`,
        transport,
        calls: 10,
        rate: 20,
        holdMs: 500,
        service: 'conf',
      });
      const f = await fresh.wait(30_000);
      assert.equal(f.code, 0, `${fresh.errors()}\n${f.output.slice(-1500)}`);
      assert.equal(f.successful, 10);

      const h = await held.wait(30_000);
      assert.equal(
        h.code,
        0,
        `every call up at the hand-off completes\n${held.errors()}\n${h.output.slice(-2000)}`,
      );
      assert.equal(h.successful, calls);
      assert.equal(h.failed, 0);
      assert.equal(await old.waitForExit(15_000), 0, old.output);
      assert.match(old.output, new RegExp(`${calls} session\\(s\\) ended by themselves, 0 forced`));

      const after = await ebb.waitFor('m1', 'voice', (s) => s.sessions === 0, 'no call left');
      assert.equal(after.forced, 0);
    });
  }
});
