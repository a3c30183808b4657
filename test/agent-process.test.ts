import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet, tcpService } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { tryConnect } from './harness/tcp-sessions.ts';

const portBase = await freePortRange(10);

/** `ebb agent` and `ebb api` as separate processes on one SQLite file (SPEC §6: several processes, one store). */
describe('separate agent and API processes on SQLite', () => {
  const ws = new Workspace();
  const members = loopbackMembers(2, loopbackNet(), () => [tcpService('web', portBase)]);
  let config: string;
  const servers: EbbServer[] = [];
  const run = (...args: string[]) => runEbb(['--config', config, ...args]);

  before(async () => {
    config = ws.config('pool.yaml', {
      pool: { name: `ap${portBase}`, fqdn: `ap${portBase}.ebb.test` },
      store: `sqlite:${ws.dir}/state.db`,
      api: { listen: `127.0.0.1:${portBase + 1}` },
      agent: { leaseTtl: '2s', localState: `${ws.dir}/local` },
      members,
    });
    for (const m of members) {
      servers.push(
        await EbbServer.start(['agent', '--config', config, '--member', m.id], /running/, { cwd: ws.dir }),
      );
    }
    servers.push(await EbbServer.start(['api', '--config', config], /ebb api:/, { cwd: ws.dir }));
  });

  after(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    ws.cleanup();
  });

  it('an agent whose services are all paused keeps running and applies the resume', async () => {
    const pause = await run('pause', 'm1');
    assert.equal(pause.code, 0, pause.stderr);
    assert.equal(await tryConnect(members[0]!.address, portBase), 'ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(servers[0]!.child.exitCode, null, `the agent exited:\n${servers[0]!.output}`);
    const resume = await run('resume', 'm1');
    assert.equal(resume.code, 0, resume.stderr);
    assert.doesNotMatch(resume.stdout, /not confirmed/);
    assert.equal(await tryConnect(members[0]!.address, portBase), 'connected');
  });
});
