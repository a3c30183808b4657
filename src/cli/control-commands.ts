import { Argument, Option, type Command } from 'commander';
import type { CommandResult, MemberStatus } from '../control/index.ts';
import { BadRequestError, TimeoutError, formatDuration, parseDuration, startupTypes } from '../core/index.ts';
import type { ApiClient } from './api-client.ts';
import { throwIfNotApplied } from './apply-failures.ts';
import { apiClient, globals, printJson, type GlobalOptions } from './cli-context.ts';
import { DrainProgress } from './progress.ts';

interface ControlOptions {
  service?: string;
  reason?: string;
  deadline?: string;
  force?: boolean;
  graceful?: boolean;
  wait?: boolean;
  timeout?: string;
}

const pollMs = 250;

export function registerControlCommands(program: Command): void {
  program
    .command('pause')
    .description('refuse new sessions at once; existing sessions go on until they end')
    .argument('<member>')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--deadline <duration>', 'end remaining sessions after this long (counted as forced)')
    .option('--force', 'override the capacity guard (audited)')
    .option('--wait', 'wait until the paused services are drained')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 3)')
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(
        command,
        'pause',
        member,
        opts,
        { deadline: opts.deadline, force: opts.force },
        opts.wait ? 'drained' : null,
      ),
    );

  program
    .command('resume')
    .description('accept new sessions again')
    .argument('<member>')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(command, 'resume', member, opts, {}, null),
    );

  program
    .command('start')
    .description('start a stopped service (refused when its startup type is disabled)')
    .argument('<member>')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(command, 'start', member, opts, {}, null),
    );

  program
    .command('stop')
    .description('stop: end every session now, or with --graceful let them end first')
    .argument('<member>')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--graceful', 'refuse new sessions, stop when the last one ends')
    .option('--deadline <duration>', 'with --graceful: end remaining sessions after this long')
    .option('--force', 'override the capacity guard (audited)')
    .option('--wait', 'wait until the services are stopped')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 3)')
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(
        command,
        'stop',
        member,
        opts,
        { graceful: opts.graceful === true, deadline: opts.deadline, force: opts.force },
        opts.wait ? 'stopped' : null,
      ),
    );

  program
    .command('startup')
    .description('set the startup type of a service')
    .argument('<member>')
    .addArgument(new Argument('<type>', 'startup type').choices(startupTypes))
    .requiredOption('--service <id>', 'the service')
    .option('--reason <text>', 'why, for the audit trail')
    .action((member: string, type: string, opts: ControlOptions, command: Command) =>
      control(command, 'startup', member, opts, { startup: type }, null),
    );

  program
    .command('drain')
    .description('pause every service of a member and wait until it is ready for offline')
    .argument('<member>')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--timeout <duration>', 'give up waiting after this long (exit 3); the member stays paused')
    .option('--deadline <duration>', 'end remaining sessions after this long (counted as forced)')
    .addOption(new Option('--force', 'override the capacity guard (audited)'))
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(
        command,
        'pause',
        member,
        { ...opts, service: undefined },
        { deadline: opts.deadline, force: opts.force },
        'ready',
        true,
      ),
    );
}

type WaitFor = 'drained' | 'stopped' | 'ready' | null;

async function control(
  command: Command,
  action: string,
  member: string,
  opts: ControlOptions,
  extra: Record<string, unknown>,
  waitFor: WaitFor,
  isDrain = false,
): Promise<void> {
  const options = globals(command);
  if (opts.deadline !== undefined) parseDuration(opts.deadline, '--deadline');
  const timeoutMs = opts.timeout === undefined ? null : parseDuration(opts.timeout, '--timeout');
  if (opts.timeout !== undefined && waitFor === null) {
    throw new BadRequestError([{ path: '--timeout', message: 'only makes sense with --wait' }]);
  }
  const client = apiClient(options);
  const body = Object.fromEntries(
    Object.entries({ service: opts.service, reason: opts.reason, ...extra }).filter(
      ([, v]) => v !== undefined,
    ),
  );
  const result = await client.post<CommandResult>(
    `/v1/members/${encodeURIComponent(member)}/${action}`,
    body,
  );
  if (!options.json) printResult(result, isDrain ? 'drain' : action);
  throwIfNotApplied(result);
  if (waitFor === null) {
    if (options.json) printJson(result);
    return;
  }
  const services = opts.service ? [opts.service] : result.status.services.map((s) => s.id);
  const final = await waitUntil(client, member, services, waitFor, timeoutMs, options);
  if (options.json) printJson({ ...result, status: final });
}

function printResult(result: CommandResult, action: string): void {
  const lines = result.changed.map((c) => {
    const service = result.status.services.find((s) => s.id === c.service);
    const after = service ? ` (${service.state}, ${service.sessions} session(s))` : '';
    return `${result.member}/${c.service}: ${c.from} → ${c.to}${after}`;
  });
  for (const u of result.unchanged) lines.push(`${result.member}/${u.service}: unchanged, ${u.why}`);
  if (result.forced) lines.push('forced past the capacity guard (audited)');
  if (!result.applied && result.failures.length === 0)
    lines.push(`warning: the agent of ${result.member} has not confirmed it yet (agent down or busy)`);
  process.stdout.write(`${action}: ${lines.join('\n  ')}\n`);
}

/** Polls the member until the condition holds; exit 3 (TimeoutError) when the timeout passes. */
async function waitUntil(
  client: ApiClient,
  member: string,
  services: string[],
  waitFor: Exclude<WaitFor, null>,
  timeoutMs: number | null,
  options: GlobalOptions,
): Promise<MemberStatus> {
  const progress = options.json ? null : new DrainProgress(`${member}`);
  const startedAt = Date.now();
  for (;;) {
    const status = await client.get<MemberStatus>(`/v1/members/${encodeURIComponent(member)}`);
    const targeted = status.services.filter((s) => services.includes(s.id));
    const left = targeted.reduce((sum, s) => sum + s.sessions, 0);
    const done =
      waitFor === 'ready'
        ? status.readyForOffline
        : waitFor === 'stopped'
          ? targeted.every((s) => s.state === 'stopped')
          : targeted.every((s) => s.drained || s.state === 'stopped');
    if (done) {
      const forced = targeted.reduce((sum, s) => sum + s.forced, 0);
      const what = waitFor === 'ready' ? 'ready for offline' : waitFor;
      progress?.finish(`${member}: ${what}${forced > 0 ? `, ${forced} session(s) forced` : ''}`);
      return status;
    }
    if (timeoutMs !== null && Date.now() - startedAt >= timeoutMs) {
      progress?.finish(`${member}: timed out with ${left} session(s) left`);
      throw new TimeoutError(
        `${member} is not ${waitFor === 'ready' ? 'ready for offline' : waitFor} after ${formatDuration(timeoutMs)}: ${left} session(s) left`,
        {
          sessions: left,
        },
      );
    }
    progress?.update(
      left,
      targeted
        .filter((s) => !s.drained && s.state !== 'stopped')
        .map((s) => s.id)
        .join(', '),
    );
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
