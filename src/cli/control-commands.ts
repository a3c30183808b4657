import { Argument, Option, type Command } from 'commander';
import type { CommandResult, MemberStatus, PoolStatus } from '../control/index.ts';
import { BadRequestError, ExitCode, parseDuration, startupTypes } from '../core/index.ts';
import { throwIfNotApplied } from './apply-failures.ts';
import { apiClient, globals, printJson } from './cli-context.ts';
import { commandLines } from './command-report.ts';
import { dryRunPlan, dryRunText } from './dry-run.ts';
import { DrainProgress } from './progress.ts';
import { safeText } from './safe-text.ts';
import { waitForMember, type WaitFor } from './wait-for-member.ts';

interface ControlOptions {
  service?: string;
  reason?: string;
  deadline?: string;
  force?: boolean;
  graceful?: boolean;
  wait?: boolean;
  timeout?: string;
  dryRun?: boolean;
}

const dryRunHelp =
  'say what the capacity guard would leave accepting, change nothing (exit 4: it would refuse)';

export function registerControlCommands(program: Command): void {
  program
    .command('pause')
    .description('refuse new sessions at once; existing sessions go on until they end')
    .argument('<member>', 'member id (e.g. fe01)')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--deadline <duration>', 'end remaining sessions after this long (counted as forced)')
    .option('--force', 'override the capacity guard (audited)')
    .option('--wait', 'wait until the paused services are drained')
    .option('--dry-run', dryRunHelp)
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
    .argument('<member>', 'member id (e.g. fe01)')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(command, 'resume', member, opts, {}, null),
    );

  program
    .command('start')
    .description('start a stopped service (refused when its startup type is disabled)')
    .argument('<member>', 'member id (e.g. fe01)')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(command, 'start', member, opts, {}, null),
    );

  program
    .command('stop')
    .description('stop: end every session now, or with --graceful let them end first')
    .argument('<member>', 'member id (e.g. fe01)')
    .option('--service <id>', 'one service (default: every service of the member)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--graceful', 'refuse new sessions, stop when the last one ends')
    .option('--deadline <duration>', 'with --graceful: end remaining sessions after this long')
    .option('--force', 'override the capacity guard (audited)')
    .option('--wait', 'wait until the services are stopped')
    .option('--dry-run', dryRunHelp)
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
    .argument('<member>', 'member id (e.g. fe01)')
    .addArgument(new Argument('<type>', 'startup type').choices(startupTypes))
    .requiredOption('--service <id>', 'the service (required)')
    .option('--reason <text>', 'why, for the audit trail')
    .action((member: string, type: string, opts: ControlOptions, command: Command) =>
      control(command, 'startup', member, opts, { startup: type }, null),
    );

  program
    .command('drain')
    .description('pause every service of a member and wait until it is ready for offline')
    .argument('<member>', 'member id (e.g. fe01)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--timeout <duration>', 'give up waiting after this long (exit 3); the member stays paused')
    .option('--deadline <duration>', 'end remaining sessions after this long (counted as forced)')
    .addOption(new Option('--force', 'override the capacity guard (audited)'))
    .option('--dry-run', dryRunHelp)
    .action((member: string, opts: ControlOptions, command: Command) =>
      control(
        command,
        'drain',
        member,
        { ...opts, service: undefined },
        { deadline: opts.deadline, force: opts.force },
        'ready',
        true,
      ),
    );
}

async function control(
  command: Command,
  action: string,
  member: string,
  opts: ControlOptions,
  extra: Record<string, unknown>,
  waitFor: WaitFor | null,
  isDrain = false,
): Promise<void> {
  const options = globals(command);
  if (opts.deadline !== undefined) parseDuration(opts.deadline, '--deadline');
  const timeoutMs = opts.timeout === undefined ? null : parseDuration(opts.timeout, '--timeout');
  if (opts.timeout !== undefined && waitFor === null) {
    throw new BadRequestError([{ path: '--timeout', message: 'only makes sense with --wait' }]);
  }
  // SPEC §2: a deadline belongs to a pause or a graceful stop; a hard stop ends every session now.
  if (action === 'stop' && opts.deadline !== undefined && opts.graceful !== true) {
    throw new BadRequestError([{ path: '--deadline', message: 'only makes sense with --graceful' }]);
  }
  const client = apiClient(options);
  if (opts.dryRun) {
    const pool = await client.get<PoolStatus>('/v1/pool');
    const lines = dryRunPlan(pool, member, opts.service, opts.force === true);
    const label = isDrain ? 'drain' : action;
    if (options.json) printJson({ dryRun: true, action: label, member, services: lines });
    else
      process.stdout.write(
        `${dryRunText(label, safeText(member), lines, opts.graceful === true).join('\n')}\n`,
      );
    if (lines.some((l) => l.refused)) process.exitCode = ExitCode.guardRefused;
    return;
  }
  const path = `/v1/members/${encodeURIComponent(member)}`;
  // The member as it is now: what the command changed (startup type, sessions forced) is told from it.
  // Best effort: the command itself says why it cannot run, and is audited (a refused token included).
  const before = await client.get<MemberStatus>(path).catch(() => null);
  const body = Object.fromEntries(
    Object.entries({ service: opts.service, reason: opts.reason, ...extra }).filter(
      ([, v]) => v !== undefined,
    ),
  );
  const result = await client.post<CommandResult>(`${path}/${action}`, body);
  if (!options.json) printResult(result, before, isDrain ? 'drain' : action, extra);
  throwIfNotApplied(result);
  if (waitFor === null) {
    if (options.json) printJson(result);
    return;
  }
  const services = opts.service ? [opts.service] : result.status.services.map((s) => s.id);
  const progress = options.json ? null : new DrainProgress(safeText(member));
  // Ctrl-C ends the watching, not the drain (operator audit #38): say what stays as it is.
  const interrupted = () => {
    progress?.clear();
    process.stderr.write(`\n${interruptedText(action, member, opts.service)}\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    const final = await waitForMember(client, { member, services, waitFor, timeoutMs, before, progress });
    if (options.json) printJson({ ...result, status: final });
  } finally {
    process.off('SIGINT', interrupted);
  }
}

/** `interrupted: fe01 stays paused (ebb resume fe01 takes it back)`. */
export function interruptedText(action: string, member: string, service: string | undefined): string {
  const target = safeText(service ? `${member}/${service}` : member);
  const undo = `ebb resume ${safeText(member)}${service ? ` --service ${safeText(service)}` : ''}`;
  if (action === 'stop')
    return `interrupted: ${target} goes on stopping; its sessions end by themselves (\`ebb status --member ${safeText(member)}\`)`;
  return `interrupted: ${target} stays paused and goes on draining (\`${undo}\` takes it back)`;
}

function printResult(
  result: CommandResult,
  before: MemberStatus | null,
  label: string,
  extra: Record<string, unknown>,
): void {
  const lines = commandLines(result, before, {
    action: result.action,
    graceful: extra['graceful'] === true,
    ...(typeof extra['startup'] === 'string' ? { startup: extra['startup'] } : {}),
  });
  if (result.forced) lines.push('forced past the capacity guard (audited)');
  if (!result.applied && result.failures.length === 0)
    lines.push(`warning: the agent of ${result.member} has not confirmed it yet (agent down or busy)`);
  process.stdout.write(`${label}: ${lines.join('\n  ')}\n`);
}
