import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { PoolResolver } from '../client/index.ts';
import type { PoolConfig } from '../config/index.ts';
import type { CommandResult, MemberStatus, PoolStatus } from '../control/index.ts';
import { throwIfNotApplied } from './apply-failures.ts';
import {
  BadRequestError,
  EbbError,
  ExitCode,
  TimeoutError,
  formatDuration,
  parseDuration,
} from '../core/index.ts';
import type { ApiClient } from './api-client.ts';
import { apiClient, globals, printJson, requireConfig } from './cli-context.ts';
import { dryRunPlan, dryRunText } from './dry-run.ts';
import { DrainProgress } from './progress.ts';
import { safeText } from './safe-text.ts';

interface MaintainOptions {
  members?: string;
  maxUnavailable: string;
  drainTimeout: string;
  agentTimeout: string;
  exec: string;
  reason?: string;
  restart?: boolean;
  dryRun?: boolean;
}

interface Progress {
  exec: string;
  members: string[];
  done: string[];
}

const pollMs = 250;

/**
 * `ebb maintain` (SPEC §7): rolling maintenance. For each member in turn, never more than N at once and
 * never below the capacity guard: drain, run the command with EBB_MEMBER set, wait for the agent, resume,
 * check it accepts and is back in DNS. Progress is kept in a file, so a crashed run resumes where it was.
 */
export function registerMaintainCommand(program: Command): void {
  program
    .command('maintain')
    .description('rolling maintenance: drain each member, run CMD, resume it, one batch at a time')
    .requiredOption('--exec <cmd>', 'shell command to run for each drained member (EBB_MEMBER is set)')
    .option('--members <a,b>', 'which members, in order (default: all)')
    .option('--max-unavailable <n>', 'members under maintenance at once', '1')
    .option('--drain-timeout <dur>', 'give up when a member is not ready for offline by then (exit 3)', '30m')
    .option('--agent-timeout <dur>', 'how long to wait for the agent after the command', '5m')
    .option('--reason <text>', 'for the audit trail', 'rolling maintenance')
    .option('--restart', 'forget the progress of an earlier run and start from the first member')
    .option('--dry-run', 'say the order and what the capacity guard would leave accepting; change nothing')
    .action(async (opts: MaintainOptions, command: Command) => {
      const options = globals(command);
      const config = requireConfig(options);
      const client = apiClient(options);
      const batchSize = Number(opts.maxUnavailable);
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new BadRequestError([{ path: '--max-unavailable', message: 'must be a whole number ≥ 1' }]);
      }
      const members = opts.members
        ? opts.members.split(',').map((m) => m.trim())
        : config.members.map((m) => m.id);
      for (const id of members) {
        if (!config.members.some((m) => m.id === id))
          throw new BadRequestError([{ path: '--members', message: `no member "${id}"` }]);
      }
      const timeouts = {
        drain: parseDuration(opts.drainTimeout, '--drain-timeout'),
        agent: parseDuration(opts.agentTimeout, '--agent-timeout'),
      };
      const progressPath = join(dirname(config.agent.localState), `maintain-${config.pool.name}.json`);
      if (opts.dryRun) return dryRun(client, members, batchSize, opts.exec, options.json);
      const progress = loadProgress(progressPath, opts, members);
      const todo = members.filter((m) => !progress.done.includes(m));
      if (progress.done.length > 0)
        log(options.json, `resuming an earlier run: ${progress.done.join(', ')} already done`);

      for (let i = 0; i < todo.length; i += batchSize) {
        const batch = todo.slice(i, i + batchSize);
        await Promise.all(
          batch.map((member) => maintainOne(client, config, member, opts, timeouts, options.json)),
        );
        progress.done.push(...batch);
        saveProgress(progressPath, progress);
      }
      rmSync(progressPath, { force: true });
      if (options.json) printJson({ maintained: members });
      else process.stdout.write(`maintain: done, ${members.length} member(s): ${members.join(', ')}\n`);
    });
}

/**
 * `maintain --dry-run`: the batches in order and, for each member, what draining it would leave accepting
 * while the others are in service (exit 4 when the guard would refuse one).
 */
async function dryRun(
  client: ApiClient,
  members: string[],
  batchSize: number,
  exec: string,
  json?: boolean,
): Promise<void> {
  const pool = await client.get<PoolStatus>('/v1/pool');
  const batches: string[][] = [];
  for (let i = 0; i < members.length; i += batchSize) batches.push(members.slice(i, i + batchSize));
  const plans = members.map((member) => ({ member, services: dryRunPlan(pool, member, undefined, false) }));
  if (json) printJson({ dryRun: true, exec, batches, members: plans });
  else {
    const lines = [
      `would maintain ${members.length} member(s), ${batchSize} at a time: ${batches.map((b) => b.join('+')).join(' → ')}`,
      `each: drain, run ${safeText(JSON.stringify(exec))} with EBB_MEMBER set, wait for its agent, resume`,
      ...plans.flatMap((p) => dryRunText('drain', p.member, p.services)),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (plans.some((p) => p.services.some((s) => s.refused))) process.exitCode = ExitCode.guardRefused;
}

async function maintainOne(
  client: ApiClient,
  config: PoolConfig,
  member: string,
  opts: MaintainOptions,
  timeouts: { drain: number; agent: number },
  json?: boolean,
): Promise<void> {
  log(json, `${member}: draining`);
  throwIfNotApplied(
    await client.post<CommandResult>(`/v1/members/${member}/drain`, {
      reason: opts.reason ?? 'rolling maintenance',
    }),
  );
  await pollMember(client, member, timeouts.drain, (s) => s.readyForOffline, 'ready for offline', json);

  log(json, `${member}: running ${opts.exec}`);
  const code = await runShell(opts.exec, member);
  if (code !== 0) {
    throw new EbbError(
      'EBB_MAINTAIN_COMMAND_FAILED',
      `${member}: the command exited ${code}; ${member} stays paused`,
    );
  }

  await pollMember(client, member, timeouts.agent, (s) => s.agent === 'up', 'agent up', json);
  throwIfNotApplied(
    await client.post<CommandResult>(`/v1/members/${member}/resume`, {
      reason: opts.reason ?? 'rolling maintenance',
    }),
  );
  await pollMember(
    client,
    member,
    timeouts.agent,
    (s) => s.services[0]?.accepting === true,
    'accepting',
    json,
  );
  await waitInDns(config, member, timeouts.agent);
  log(json, `${member}: back in service`);
}

async function pollMember(
  client: ApiClient,
  member: string,
  timeoutMs: number,
  done: (status: MemberStatus) => boolean,
  what: string,
  json?: boolean,
): Promise<void> {
  const progress = json || what !== 'ready for offline' ? null : new DrainProgress(member);
  const startedAt = Date.now();
  for (;;) {
    const status = await client.get<MemberStatus>(`/v1/members/${member}`);
    if (done(status)) {
      progress?.finish(`${member}: ${what}`);
      return;
    }
    if (Date.now() - startedAt > timeoutMs) {
      throw new TimeoutError(`${member}: not ${what} after ${formatDuration(timeoutMs)}; it stays as it is`);
    }
    progress?.update(status.services.reduce((sum, s) => sum + s.sessions, 0));
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The member is back in the answers for the pool name (its primary service accepts again). */
async function waitInDns(config: PoolConfig, member: string, timeoutMs: number): Promise<void> {
  const address = config.members.find((m) => m.id === member)!.address;
  const resolver = new PoolResolver({ server: config.dns.listen, timeoutMs: 1000 });
  const startedAt = Date.now();
  for (;;) {
    const answer = await resolver.resolveName(config.pool.fqdn, 0).catch(() => []);
    if (answer.some((e) => e.host === address)) return;
    if (Date.now() - startedAt > timeoutMs)
      throw new TimeoutError(`${member}: not back in DNS after ${formatDuration(timeoutMs)}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

function runShell(command: string, member: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, EBB_MEMBER: member },
    });
    child.on('close', (code) => resolve(code ?? 1));
    child.on('error', () => resolve(127));
  });
}

/**
 * The progress of an unfinished earlier run: resumed when the command and members are the same. With
 * another --exec or --members it is not silently forgotten (operator audit #37: the members it already
 * did would be done twice): exit 2 saying what it was, unless --restart.
 */
export function loadProgress(path: string, opts: MaintainOptions, members: string[]): Progress {
  if (!opts.restart) {
    let saved: Progress | null = null;
    try {
      saved = JSON.parse(readFileSync(path, 'utf8')) as Progress;
    } catch {
      // no earlier run
    }
    if (saved && saved.exec === opts.exec && saved.members.join() === members.join()) return saved;
    if (saved && saved.done.length > 0) {
      const what =
        saved.exec === opts.exec
          ? `--members ${saved.members.join(',')}`
          : `--exec ${JSON.stringify(saved.exec)}`;
      throw new EbbError(
        'EBB_USAGE',
        `an unfinished earlier run with ${safeText(what)} already did ${saved.done.join(', ')} (${path}): ` +
          'run it again with the same --exec and --members to resume it, or add --restart to start over',
        { exitCode: ExitCode.usage },
      );
    }
  }
  return { exec: opts.exec, members, done: [] };
}

function saveProgress(path: string, progress: Progress): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(progress, null, 2));
}

function log(json: boolean | undefined, line: string): void {
  if (!json) process.stderr.write(`maintain: ${line}\n`);
}
