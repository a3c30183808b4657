import { spawn } from 'node:child_process';
import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { checkListenerFiles, configWarnings, type PoolConfig } from '../config/index.ts';
import { EbbError, ExitCode, formatDuration, parseDuration, type EbbEvent } from '../core/index.ts';
import { PoolRunner, type PoolRunnerOptions } from '../runner/index.ts';
import { bannerHints, restoredLines } from './banner-hints.ts';
import { findConfigPath, globals, requireConfig } from './cli-context.ts';
import { createLogger, logFormatOption, logSettings } from './logger.ts';
import { safeText } from './safe-text.ts';

export function registerServerCommands(program: Command): void {
  program
    .command('up')
    .description('run the whole pool of CONFIG in one process: every agent, the DNS server and the API')
    .argument('[config]', 'pool configuration (YAML)')
    .addOption(logFormatOption())
    .addOption(handoffTimeoutOption())
    .action(async (file: string | undefined, opts: ServerOptions, command: Command) => {
      const logger = loggerFor(opts);
      const path = findConfigPath(globals(command), file);
      const config = requireConfig(globals(command), file);
      checkListenerFiles(config, { source: path });
      warnAbout(config, logger);
      const runner = new PoolRunner({ config, logger, ...handoff(opts, 'up') });
      await runUntilSignal(runner, () => printBanner(config, path!, runner));
    });

  program
    .command('agent')
    .description("run one member's agent (one per machine in a multi-machine pool)")
    .requiredOption('--member <id>', 'the member this agent runs')
    .addOption(logFormatOption())
    .addOption(handoffTimeoutOption())
    .action(async (opts: ServerOptions & { member: string }, command: Command) => {
      const logger = loggerFor(opts);
      const config = requireConfig(globals(command));
      requireMember(config, opts.member);
      warnAbout(config, logger);
      checkListenerFiles(config, { source: findConfigPath(globals(command)), members: [opts.member] });
      const runner = new PoolRunner({
        config,
        logger,
        agents: [opts.member],
        api: false,
        dns: false,
        ...handoff(opts, `agent ${opts.member}`),
      });
      await runUntilSignal(
        runner,
        () => process.stdout.write(`ebb agent ${opts.member}: running (store ${config.store})\n`),
        opts.member,
      );
    });

  program
    .command('api')
    .description('run the API alone (several may run on one store)')
    .option('--listen <host:port>', 'address to listen on (default: api.listen of the config)')
    .addOption(logFormatOption())
    .addOption(handoffTimeoutOption())
    .action(async (opts: ServerOptions & { listen?: string }, command: Command) => {
      const logger = loggerFor(opts);
      const config = requireConfig(globals(command));
      const listen = opts.listen ?? config.api.listen;
      const runner = new PoolRunner({
        config,
        logger,
        agents: [],
        api: { listen },
        dns: false,
        ...handoff(opts, `api ${listen}`),
      });
      await runUntilSignal(runner, () => process.stdout.write(`ebb api: ${runner.api?.url}\n`));
    });

  program
    .command('dns')
    .description('run the pool DNS server alone (several may run on one store)')
    .option('--listen <host:port>', 'address to listen on, UDP and TCP (default: dns.listen of the config)')
    .addOption(logFormatOption())
    .addOption(handoffTimeoutOption())
    .action(async (opts: ServerOptions & { listen?: string }, command: Command) => {
      const logger = loggerFor(opts);
      const config = requireConfig(globals(command));
      const listen = opts.listen ?? config.dns.listen;
      const runner = new PoolRunner({
        config,
        logger,
        agents: [],
        api: false,
        dns: { listen },
        ...handoff(opts, `dns ${listen}`),
      });
      await runUntilSignal(runner, () =>
        process.stdout.write(`ebb dns: ${config.pool.fqdn} on ${listen} (udp, tcp)\n`),
      );
    });
}

interface LogOptions {
  logFormat?: string;
}

interface ServerOptions extends LogOptions {
  handoffTimeout?: string;
}

function handoffTimeoutOption(): Option {
  return new Option(
    '--handoff-timeout <duration>',
    'replacing a running process (SPEC §13): how long it may serve its live sessions before they are ended, counted as forced',
  ).default('1h');
}

/** The hand-off settings of a server command: `scope` names what it runs (its control socket). */
function handoff(
  opts: ServerOptions,
  scope: string,
): Pick<PoolRunnerOptions, 'handoffScope' | 'handoffTimeoutMs'> {
  return {
    handoffScope: scope,
    handoffTimeoutMs: parseDuration(opts.handoffTimeout ?? '1h', '--handoff-timeout'),
  };
}

/** Checked before the config, so a bad EBB_LOG_LEVEL is told before anything else starts. */
function loggerFor(opts: LogOptions): Logger {
  return createLogger(logSettings(process.env, opts.logFormat, process.stderr.isTTY === true));
}

/** A config that is valid but cannot work as meant (an impossible capacity guard): said at start. */
function warnAbout(config: PoolConfig, logger: Logger): void {
  for (const warning of configWarnings(config)) logger.warn({ code: 'EBB_CONFIG_WARNING' }, warning);
}

/**
 * `--member %H` on a host whose name is not a member id is an operator's mistake, not a crash: exit 2
 * with the members the config has.
 */
export function requireMember(config: PoolConfig, member: string): void {
  if (config.members.some((m) => m.id === member)) return;
  const ids = config.members.map((m) => m.id);
  const shown = ids.length > 10 ? `${ids.slice(0, 10).join(', ')}, … ${ids.length} in all` : ids.join(', ');
  throw new EbbError(
    'EBB_USAGE',
    `--member: "${safeText(member)}" is not a member of pool ${config.pool.name} (${shown})`,
    { exitCode: ExitCode.usage },
  );
}

/**
 * Starts the runner, prints what it is, and stops it cleanly on SIGINT/SIGTERM. SIGHUP starts a new
 * process with the same arguments, which replaces this one (SPEC §13); this one then serves its live
 * sessions until they end and exits 0.
 */
async function runUntilSignal(runner: PoolRunner, announce: () => void, onlyMember?: string): Promise<void> {
  await runner.start();
  let yielded = false;
  // Events come from the store, written by other processes: escaped before they reach a terminal. An
  // agent prints its own member's (operator audit #35): each machine's journal tells its own story —
  // until it hands over, when its successor tells it.
  runner.state.onEvent((event) => {
    if (yielded || (onlyMember !== undefined && event.member !== onlyMember)) return;
    process.stdout.write(`${safeText(formatEvent(event))}\n`);
  });
  announce();
  notifySystemd();
  // Store and agent timers are unref'd, and a paused tcp service has no listening socket: without this
  // a lone `ebb agent` whose services are all paused would run out of work and exit.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  runner.onYielded((pid, sessions) => {
    yielded = true;
    process.stdout.write(
      `ebb: pid ${pid} took over; this process (pid ${process.pid}) serves its ${sessions} live session(s) until they end, then exits\n`,
    );
  });
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      process.stdout.write(`\nebb: ${signal}: stopping${yielded ? '' : liveSessionsNote(runner)}\n`);
      clearInterval(keepAlive);
      void runner.stop().then(resolve);
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGHUP', () => {
      if (!yielded) startSuccessor();
    });
    runner.onHandedOver(({ successorPid, ended, forced }) => {
      process.stdout.write(
        `ebb: handed over to pid ${successorPid}: ${ended} session(s) ended by themselves, ${forced} forced; exiting\n`,
      );
      clearInterval(keepAlive);
      void runner.stop().then(resolve);
    });
  });
}

/** The same command again, as a new process that replaces this one (SIGHUP, `ExecReload=`). */
function startSuccessor(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: process.env,
  });
  // It outlives this process: it must not keep this one running once the hand-off is over.
  child.unref();
  process.stdout.write(`ebb: SIGHUP: started pid ${child.pid} to take over from this process\n`);
  child.once('exit', (code, signal) => {
    process.stdout.write(
      `ebb: pid ${child.pid} exited (${signal ?? `code ${code}`})${code === 0 ? '' : '; if it had not taken over yet, this process carries on'}\n`,
    );
  });
}

/**
 * Under systemd (`Type=notify`, `NotifyAccess=all`, docs/deploy.md) a process tells it it is ready and is
 * the service's main process now: after a hand-off the old main process exits, and the unit must not.
 */
function notifySystemd(): void {
  if (!process.env.NOTIFY_SOCKET) return;
  const child = spawn('systemd-notify', [`--pid=${process.pid}`, 'READY=1', `MAINPID=${process.pid}`], {
    stdio: 'ignore',
  });
  child.on('error', (err) =>
    process.stderr.write(
      `ebb: EBB_SYSTEMD_NOTIFY: cannot tell systemd this process is ready: ${err.message}\n`,
    ),
  );
}

/**
 * What stopping ends (operator audit #44): `; ending 2 live session(s) now, counted as forced (fe01/echo:
 * 2); \`ebb drain fe01\` first ends none`. The agents count and audit them as forced on the way out.
 */
function liveSessionsNote(runner: PoolRunner): string {
  const mine = new Set(runner.agents.map((a) => a.member.id));
  const live = runner.state
    .snapshot()
    .members.filter((m) => mine.has(m.id))
    .flatMap((m) => m.services.filter((s) => s.sessions > 0).map((s) => ({ member: m.id, service: s })));
  if (live.length === 0) return '';
  const total = live.reduce((sum, l) => sum + l.service.sessions, 0);
  const where = live.map((l) => `${l.member}/${l.service.id}: ${l.service.sessions}`).join(', ');
  const members = [...new Set(live.map((l) => l.member))];
  return `; ending ${total} live session(s) now, not drained, counted as forced (${where}); \`ebb drain ${members.join('` / `ebb drain ')}\` first ends none`;
}

/** `12:00:01.250 service.paused     fe01/echo  deadlineAt=2026-12-01T12:10:01Z (in 10m00s)`. */
export function formatEvent(event: EbbEvent): string {
  const time = new Date(event.at).toISOString().slice(11, 23);
  const target = event.service ? `${event.member}/${event.service}` : event.member;
  const facts = Object.entries(event.data ?? {})
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${factText(k, v, event.at)}`)
    .join(' ');
  return `${time} ${event.code.padEnd(16)} ${target}${facts ? `  ${facts}` : ''}`;
}

/** Times (`…At`, epoch ms) as UTC with how far from the event (operator audit #35), not raw numbers. */
function factText(key: string, value: unknown, at: number): string {
  if (/At$/.test(key) && typeof value === 'number' && value > 1e12) {
    const when = new Date(value).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const delta = value - at;
    return `${when} (${delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`})`;
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function printBanner(config: PoolConfig, path: string, runner: PoolRunner): void {
  const api = runner.api?.url ?? '(no API)';
  const lines = [
    `ebb: pool ${config.pool.name} (${config.pool.fqdn}) is up — ${config.members.length} member${config.members.length === 1 ? '' : 's'}, store ${config.store}`,
    ...config.members.map(
      (m) =>
        `  ${m.id} ${m.address}: ${m.services.map((s) => `${s.id} (${s.listeners.map((l) => `${l.protocol}${l.protocol === 'sip' ? `/${l.transport}` : ''} ${l.port}`).join(', ')})`).join(', ')}`,
    ),
    `Console: ${api}/`,
    `API:     ${api}   (OpenAPI: ${api}/v1/openapi.json, metrics: ${api}/metrics)`,
    `DNS:     ${config.dns.listen} (udp, tcp), zone ${config.pool.fqdn}`,
    ...(runner.predecessor
      ? [
          `Took over from pid ${runner.predecessor.pid}: it serves its ${runner.predecessor.sessions} live session(s) until they end (docs/handoff.md)`,
        ]
      : []),
    ...restoredLines(runner.state.snapshot()),
    '',
    ...bannerHints(config, path),
    'Ctrl-C stops the pool. Events:',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
