/**
 * Controller + PoolState + MemberAgent in one process over a temporary SQLite store, composed by PoolRunner
 * (no API), with real TCP listeners on loopback aliases.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig, type PoolConfig } from '../config/index.ts';
import {
  EventCode,
  GuardRefusedError,
  InvalidTransitionError,
  NotFoundError,
  parseIntent,
  type EbbEvent,
} from '../core/index.ts';
import { PoolRunner } from '../runner/index.ts';
import type { AuditRecord } from './index.ts';

const net = 100 + Math.floor(Math.random() * 150);
const basePort = 20_000 + Math.floor(Math.random() * 30_000);
const address = (i: number) => `127.0.${net}.${i}`;
const ports = { echo: basePort, alpha: basePort + 1, manual: basePort + 2, off: basePort + 3 };

function poolConfig(dir: string): PoolConfig {
  const members = [1, 2, 3].map((i) => ({
    id: `m${i}`,
    address: address(i),
    services: [
      { id: 'echo', listeners: [{ protocol: 'tcp', port: ports.echo, upstream: 'builtin:echo' }] },
      {
        id: 'alpha',
        minAccepting: 2,
        listeners: [{ protocol: 'tcp', port: ports.alpha, upstream: 'builtin:echo' }],
      },
      {
        id: 'manual',
        startup: 'manual',
        listeners: [{ protocol: 'tcp', port: ports.manual, upstream: 'builtin:echo' }],
      },
      {
        id: 'off',
        startup: 'disabled',
        listeners: [{ protocol: 'tcp', port: ports.off, upstream: 'builtin:echo' }],
      },
    ],
  }));
  return validateConfig({
    pool: { name: `ctl${basePort}`, fqdn: `ctl${basePort}.ebb.test` },
    store: `sqlite:${join(dir, 'state.db')}`,
    api: { listen: '127.0.0.1:1' },
    agent: { leaseTtl: '2s', localState: join(dir, 'local') },
    members,
  });
}

function openSocket(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function tryConnect(host: string, port: number): Promise<string> {
  try {
    const socket = await openSocket(host, port);
    socket.destroy();
    return 'connected';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

function echo(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no echo of ${text}`)), 3000);
    const onData = (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length >= text.length) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.write(text);
  });
}

describe('Controller, PoolState and MemberAgent over SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-controller-'));
  const config = poolConfig(dir);
  const runner = new PoolRunner({ config, logger: pino({ level: 'silent' }), api: false, dns: false });
  const events: EbbEvent[] = [];
  const sockets: Socket[] = [];
  const svc = (member: string, service: string) =>
    runner.state
      .snapshot()
      .members.find((m) => m.id === member)!
      .services.find((s) => s.id === service)!;
  /** The audit record of the command given `reason` (reasons are unique per command in these tests). */
  const auditFor = async (reason: string): Promise<AuditRecord> => {
    const record = (await runner.controller.auditLog(1000)).find((a) => a.reason === reason);
    assert.ok(record, `an audit record with reason ${reason}`);
    return record;
  };

  before(async () => {
    await runner.start();
    runner.state.onEvent((event) => events.push(event));
    const ok = await runner.state.waitFor(
      () => runner.state.snapshot().members.every((m) => m.agent === 'up' && m.services[0]!.accepting),
      5000,
    );
    assert.ok(ok, 'every agent up and accepting');
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await runner.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts services by their startup type', () => {
    for (const member of runner.state.snapshot().members) {
      assert.equal(member.agent, 'up');
      const byId = Object.fromEntries(member.services.map((s) => [s.id, s]));
      assert.equal(byId.echo!.state, 'running');
      assert.equal(byId.echo!.accepting, true);
      assert.equal(byId.alpha!.state, 'running');
      assert.equal(byId.manual!.state, 'stopped');
      assert.equal(byId.manual!.startup, 'manual');
      assert.equal(byId.off!.state, 'stopped');
      assert.equal(byId.off!.startup, 'disabled');
      assert.equal(member.readyForOffline, false);
    }
  });

  it('pause returns only when the listener refuses; existing sessions go on', async () => {
    const host = address(1);
    for (let i = 0; i < 3; i++) sockets.push(await openSocket(host, ports.echo));
    assert.ok(await runner.state.waitFor(() => svc('m1', 'echo').sessions === 3, 3000), '3 sessions counted');

    for (let round = 0; round < 10; round++) {
      const paused = await runner.controller.execute({
        action: 'pause',
        member: 'm1',
        service: 'echo',
        reason: `round ${round}`,
        by: 'test',
      });
      // The command has returned: every connect from now on is refused.
      assert.equal(await tryConnect(host, ports.echo), 'ECONNREFUSED', `round ${round}: refused after pause`);
      assert.equal(paused.applied, true);
      assert.deepEqual(
        paused.changed.map(({ service, from, to }) => ({ service, from, to })),
        [{ service: 'echo', from: 'running', to: 'paused' }],
      );
      assert.equal(paused.status.services.find((s) => s.id === 'echo')!.state, 'paused');
      for (const socket of sockets) assert.equal(await echo(socket, `r${round}`), `r${round}`);

      const resumed = await runner.controller.execute({
        action: 'resume',
        member: 'm1',
        service: 'echo',
        by: 'test',
      });
      assert.equal(resumed.applied, true);
      assert.equal(await tryConnect(host, ports.echo), 'connected', `round ${round}: accepting after resume`);
    }
  });

  it('the pause is durable in the store before the command returns', async () => {
    const result = await runner.controller.execute({
      action: 'pause',
      member: 'm2',
      service: 'echo',
      reason: 'patch',
      by: 'ops',
    });
    const row = await runner.store.get(runner.state.keys.intent('m2', 'echo'));
    assert.ok(row);
    const intent = parseIntent(row.value)!;
    assert.equal(intent.run, 'paused');
    assert.equal(intent.reason, 'patch');
    assert.equal(intent.by, 'ops');
    assert.equal(row.modRevision, result.changed[0]!.revision);
    assert.equal(svc('m2', 'echo').intent, 'paused');
    assert.equal(svc('m2', 'echo').reason, 'patch');
    const again = await runner.controller.execute({
      action: 'pause',
      member: 'm2',
      service: 'echo',
      by: 'ops',
    });
    assert.deepEqual(again.changed, [], 'a second pause changes nothing');
    assert.deepEqual(again.unchanged, [{ service: 'echo', why: 'already paused' }]);
    await runner.controller.execute({ action: 'resume', member: 'm2', service: 'echo', by: 'ops' });
  });

  it('unknown member or service → NotFoundError, audited as an error', async () => {
    await assert.rejects(
      runner.controller.execute({ action: 'pause', member: 'nope', reason: 'no such member', by: 'test' }),
      (err: unknown) => err instanceof NotFoundError && err.httpStatus === 404 && /nope/.test(err.message),
    );
    let audit = await auditFor('no such member');
    assert.equal(audit.result, 'error');
    assert.equal(audit.member, 'nope');
    await assert.rejects(
      runner.controller.execute({
        action: 'pause',
        member: 'm1',
        service: 'nope',
        reason: 'no such service',
        by: 'test',
      }),
      NotFoundError,
    );
    audit = await auditFor('no such service');
    assert.equal(audit.result, 'error');
    assert.equal(audit.service, 'nope');
  });

  it('startup disabled → start refused; a manual service starts on command', async () => {
    await assert.rejects(
      runner.controller.execute({ action: 'start', member: 'm1', service: 'off', by: 'test' }),
      (err: unknown) => err instanceof InvalidTransitionError && /disabled/.test(err.message),
    );
    assert.equal(svc('m1', 'off').state, 'stopped');
    assert.equal(await tryConnect(address(1), ports.off), 'ECONNREFUSED');

    const started = await runner.controller.execute({
      action: 'start',
      member: 'm1',
      service: 'manual',
      by: 'test',
    });
    assert.equal(started.applied, true);
    assert.equal(svc('m1', 'manual').state, 'running');
    assert.equal(await tryConnect(address(1), ports.manual), 'connected');

    // Setting a running service to disabled leaves it running; starting it again is then refused.
    await runner.controller.execute({
      action: 'startup',
      member: 'm1',
      service: 'manual',
      startup: 'disabled',
      by: 'admin',
    });
    assert.equal(svc('m1', 'manual').startup, 'disabled');
    // m1 is the only member running `manual`: stopping it needs --force past the guard.
    await assert.rejects(
      runner.controller.execute({ action: 'stop', member: 'm1', service: 'manual', by: 'admin' }),
      GuardRefusedError,
    );
    await runner.controller.execute({
      action: 'stop',
      member: 'm1',
      service: 'manual',
      force: true,
      by: 'admin',
    });
    assert.equal(svc('m1', 'manual').state, 'stopped');
    await assert.rejects(
      runner.controller.execute({ action: 'start', member: 'm1', service: 'manual', by: 'admin' }),
      InvalidTransitionError,
    );
    await runner.controller.execute({
      action: 'startup',
      member: 'm1',
      service: 'manual',
      startup: 'manual',
      by: 'admin',
    });
  });

  it('a member-level start skips the disabled service and says why', async () => {
    const result = await runner.controller.execute({ action: 'start', member: 'm3', by: 'test' });
    assert.deepEqual(
      result.changed.map((c) => c.service),
      ['manual'],
    );
    const why = Object.fromEntries(result.unchanged.map((u) => [u.service, u.why]));
    assert.match(why.off!, /disabled/);
    assert.equal(why.echo, 'already running');
    await runner.controller.execute({
      action: 'stop',
      member: 'm3',
      service: 'manual',
      force: true,
      by: 'test',
    });
  });

  it('the capacity guard refuses, emits guard.refused, audits; --force overrides and is audited', async () => {
    await runner.controller.execute({ action: 'pause', member: 'm1', service: 'echo', by: 'ops' });
    await runner.controller.execute({ action: 'pause', member: 'm2', service: 'echo', by: 'ops' });
    const eventsBefore = events.length;
    await assert.rejects(
      runner.controller.execute({
        action: 'pause',
        member: 'm3',
        service: 'echo',
        reason: 'last',
        by: 'ops',
      }),
      (err: unknown) => {
        assert.ok(err instanceof GuardRefusedError);
        assert.equal(err.code, 'EBB_GUARD_REFUSED');
        assert.equal(err.httpStatus, 409);
        assert.equal(err.exitCode, 4);
        assert.equal(err.details?.acceptingAfter, 0);
        return true;
      },
    );
    assert.equal(svc('m3', 'echo').intent, 'running', 'a refused command changes nothing');
    assert.equal(await tryConnect(address(3), ports.echo), 'connected');
    const refusedEvent = events.slice(eventsBefore).find((e) => e.code === EventCode.guardRefused);
    assert.ok(refusedEvent, 'guard.refused emitted');
    assert.equal(refusedEvent.member, 'm3');
    assert.equal(refusedEvent.service, 'echo');
    const refusedAudit = await auditFor('last');
    assert.equal(refusedAudit.result, 'refused');
    assert.equal(refusedAudit.action, 'pause');
    assert.equal(refusedAudit.reason, 'last');
    assert.equal(refusedAudit.force, false);
    assert.match(refusedAudit.detail, /capacity guard/);

    // A stop is guarded too.
    await assert.rejects(
      runner.controller.execute({ action: 'stop', member: 'm3', service: 'echo', graceful: true, by: 'ops' }),
      GuardRefusedError,
    );

    const forced = await runner.controller.execute({
      action: 'pause',
      member: 'm3',
      service: 'echo',
      force: true,
      reason: 'forced past',
      by: 'admin',
    });
    assert.equal(forced.forced, true);
    assert.equal(await tryConnect(address(3), ports.echo), 'ECONNREFUSED');
    const forcedAudit = await auditFor('forced past');
    assert.equal(forcedAudit.result, 'ok');
    assert.equal(forcedAudit.force, true);
    assert.equal(forcedAudit.by, 'admin');
    assert.match(forcedAudit.detail, /forced past the capacity guard/);

    // Resuming mends a short pool and is never refused.
    for (const member of ['m1', 'm2', 'm3']) {
      await runner.controller.execute({ action: 'resume', member, service: 'echo', by: 'ops' });
    }
  });

  it('a per-service minAccepting (alpha: 2 of 3) is honoured', async () => {
    await runner.controller.execute({ action: 'pause', member: 'm1', service: 'alpha', by: 'ops' });
    await assert.rejects(
      runner.controller.execute({ action: 'pause', member: 'm2', service: 'alpha', by: 'ops' }),
      (err: unknown) => err instanceof GuardRefusedError && err.details?.minAccepting === 2,
    );
    await runner.controller.execute({ action: 'resume', member: 'm1', service: 'alpha', by: 'ops' });
  });

  it('ok commands are audited with who, what and why, newest first', async () => {
    await runner.controller.execute({
      action: 'pause',
      member: 'm2',
      service: 'echo',
      reason: 'kernel update',
      by: 'alice',
    });
    const audit = await auditFor('kernel update');
    assert.equal(audit.result, 'ok');
    assert.equal(audit.by, 'alice');
    assert.equal(audit.action, 'pause');
    assert.equal(audit.member, 'm2');
    assert.equal(audit.service, 'echo');
    assert.equal(audit.reason, 'kernel update');
    assert.match(audit.detail, /echo: running → paused/);
    const log = await runner.controller.auditLog(1000);
    assert.ok(log.length > 10);
    for (let i = 1; i < log.length; i++) assert.ok(log[i - 1]!.at >= log[i]!.at, 'newest first');
    await runner.controller.execute({ action: 'resume', member: 'm2', service: 'echo', by: 'alice' });
  });

  it('the audit detail has the deadline and the startup change; the sessions ended at a deadline are audited by the agent', async () => {
    const socket = await openSocket(address(2), ports.echo);
    socket.on('error', () => {});
    assert.ok(await runner.state.waitFor(() => svc('m2', 'echo').sessions === 1, 3000));
    await runner.controller.execute({
      action: 'pause',
      member: 'm2',
      service: 'echo',
      deadlineMs: 200,
      reason: 'deadline audit',
      by: 'alice',
    });
    assert.equal((await auditFor('deadline audit')).detail, 'echo: running → paused; deadline 200ms');
    let forced: AuditRecord | undefined;
    for (let i = 0; i < 100 && !forced; i++) {
      await new Promise((r) => setTimeout(r, 50));
      forced = (await runner.controller.auditLog(1000)).find(
        (a) => a.action === 'force' && a.member === 'm2',
      );
    }
    assert.ok(forced, 'the forced session is in the audit log');
    assert.equal(forced.by, 'agent:m2');
    assert.equal(forced.service, 'echo');
    assert.equal(forced.detail, '1 session(s) ended at the deadline');
    socket.destroy();
    await runner.controller.execute({ action: 'resume', member: 'm2', service: 'echo', by: 'alice' });

    await runner.controller.execute({
      action: 'startup',
      member: 'm2',
      service: 'manual',
      startup: 'disabled',
      reason: 'startup audit',
      by: 'alice',
    });
    assert.equal((await auditFor('startup audit')).detail, 'manual: startup manual → disabled');
    await runner.controller.execute({
      action: 'startup',
      member: 'm2',
      service: 'manual',
      startup: 'manual',
      by: 'alice',
    });
  });

  it('the audit log is newest first even for commands within one millisecond', {}, async () => {
    const count = 40;
    for (let i = 0; i < count; i++) {
      // Refused at once (unknown member), so many fall within the same millisecond.
      await runner.controller
        .execute({ action: 'pause', member: 'ghost', reason: `seq ${i}`, by: 'test' })
        .catch(() => {});
    }
    const log = await runner.controller.auditLog(count);
    assert.deepEqual(
      log.map((a) => a.reason),
      Array.from({ length: count }, (_, i) => `seq ${count - 1 - i}`),
    );
  });

  it('a paused member with its sessions ended is ready for offline', async () => {
    const host = address(2);
    const socket = await openSocket(host, ports.alpha);
    assert.ok(await runner.state.waitFor(() => svc('m2', 'alpha').sessions === 1, 3000));
    const result = await runner.controller.execute({ action: 'pause', member: 'm2', by: 'ops' });
    assert.deepEqual(result.changed.map((c) => c.service).sort(), ['alpha', 'echo']);
    assert.equal(result.status.readyForOffline, false, 'one session left');
    assert.equal(svc('m2', 'alpha').drained, false);
    socket.destroy();
    const ready = await runner.state.waitFor(
      () => runner.state.snapshot().members.find((m) => m.id === 'm2')!.readyForOffline,
      3000,
    );
    assert.ok(ready, 'readyForOffline once the last session ended');
    assert.equal(svc('m2', 'alpha').drained, true);
    assert.ok(
      events.some((e) => e.code === EventCode.serviceDrained && e.member === 'm2' && e.service === 'alpha'),
    );
    await runner.controller.execute({ action: 'resume', member: 'm2', by: 'ops' });
  });

  it('a resume whose port is taken is not confirmed: applied false, the failure named, retried until it works', async () => {
    const paused = await runner.controller.execute({
      action: 'pause',
      member: 'm3',
      service: 'echo',
      reason: 'port thief',
      by: 'ops',
    });
    assert.equal(paused.applied, true);
    // Someone else takes the port while the service is paused.
    const thief = createServer();
    await new Promise<void>((resolve) => thief.listen({ host: address(3), port: ports.echo }, resolve));
    const resumed = await runner.controller.execute({
      action: 'resume',
      member: 'm3',
      service: 'echo',
      by: 'ops',
    });
    assert.equal(resumed.applied, false);
    assert.equal(resumed.failures.length, 1);
    assert.equal(resumed.failures[0]!.service, 'echo');
    assert.match(resumed.failures[0]!.message, /EADDRINUSE|in use/);
    const view = svc('m3', 'echo');
    assert.equal(view.state, 'paused', 'the runtime stays where it was');
    assert.equal(view.accepting, false);
    assert.equal(view.applyError?.intentRevision, resumed.changed[0]!.revision);
    assert.ok(
      (runner.state.status('m3', 'echo')?.intentRevision ?? 0) < resumed.changed[0]!.revision,
      'the failed revision is not confirmed',
    );
    const audit = (await runner.controller.auditLog(1000)).filter(
      (a) => a.action === 'resume' && a.member === 'm3',
    );
    assert.equal(audit[0]!.result, 'error', 'the failure is audited');
    assert.ok(
      events.some((e) => e.code === EventCode.serviceFailed && e.member === 'm3' && e.service === 'echo'),
    );
    // Once the port is free the agent applies the stored intent by itself.
    await new Promise<void>((resolve) => thief.close(() => resolve()));
    assert.ok(
      await runner.state.waitFor(
        () => svc('m3', 'echo').accepting && svc('m3', 'echo').applyError === null,
        10_000,
      ),
      'm3/echo accepting again once the port was freed',
    );
    assert.equal(await tryConnect(address(3), ports.echo), 'connected');
  });

  it('a member whose agent is down is not counted by the guard (last: stops an agent)', async () => {
    const m3 = runner.agents.find((a) => a.member.id === 'm3')!;
    await m3.stop();
    assert.ok(await runner.state.waitFor(() => !runner.state.agentUp('m3'), 3000), 'm3 agent down');
    assert.equal(svc('m3', 'echo').accepting, false);
    // m1 and m2 accept echo; m3 intends to but its agent is gone.
    const paused = await runner.controller.execute({
      action: 'pause',
      member: 'm1',
      service: 'echo',
      by: 'ops',
    });
    assert.equal(paused.applied, true);
    await assert.rejects(
      runner.controller.execute({ action: 'pause', member: 'm2', service: 'echo', by: 'ops' }),
      (err: unknown) => err instanceof GuardRefusedError && err.details?.acceptingBefore === 1,
    );
    // A command for a member whose agent is down is written but not applied.
    const unapplied = await runner.controller.execute({
      action: 'pause',
      member: 'm3',
      service: 'echo',
      reason: 'agent gone',
      by: 'ops',
    });
    assert.equal(unapplied.applied, false);
    assert.match((await auditFor('agent gone')).detail, /not yet applied/);
    // Status says so (operator audit #19: `running → paused (pending)`), with who and when.
    const pending = svc('m3', 'echo');
    assert.equal(pending.state, 'running');
    assert.equal(pending.intent, 'paused');
    assert.equal(pending.pending, true);
    assert.equal(pending.intentBy, 'ops');
    assert.ok(pending.intentAt !== null && Date.now() - pending.intentAt < 60_000, 'when it was asked');
    // An applied pause is not pending.
    assert.equal(svc('m1', 'echo').pending, false);
    assert.equal(svc('m1', 'echo').intentBy, 'ops');
  });
});
