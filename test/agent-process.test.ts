import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { loopbackMembers, loopbackNet, tcpService } from './harness/pool-config.ts';
import { keepTcpMigrateReq } from './harness/migrate-req.ts';
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

  const restoreMigrateReq = keepTcpMigrateReq();

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
    restoreMigrateReq();
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

  it('ebb agent --member m1 again replaces the running agent (hand-off): it exits, m1 never looks down', async () => {
    const old = servers[0]!;
    const successor = await EbbServer.start(['agent', '--config', config, '--member', 'm1'], /running/, {
      cwd: ws.dir,
    });
    servers.push(successor);
    await old.waitForOutput(new RegExp(`pid ${successor.pid} took over`), 5000);
    assert.equal(await old.waitForExit(10_000), 0, old.output);
    const status = await run('status', '--json');
    assert.equal(status.code, 0, status.stderr);
    const m1 = (JSON.parse(status.stdout) as { members: Array<{ id: string; agent: string }> }).members.find(
      (m) => m.id === 'm1',
    )!;
    assert.equal(m1.agent, 'up');
    assert.equal(
      await tryConnect(members[0]!.address, portBase),
      'connected',
      'the new agent holds the listener',
    );
    const pause = await run('pause', 'm1');
    assert.equal(pause.code, 0, pause.stderr);
    assert.equal(await tryConnect(members[0]!.address, portBase), 'ECONNREFUSED', 'and applies intents');
    assert.equal((await run('resume', 'm1')).code, 0);
  });
});
