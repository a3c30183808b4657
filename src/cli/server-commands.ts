import type { Command } from 'commander';
import { checkListenerFiles, type PoolConfig } from '../config/index.ts';
import type { EbbEvent } from '../core/index.ts';
import { PoolRunner } from '../runner/index.ts';
import { findConfigPath, globals, requireConfig } from './cli-context.ts';
import { createLogger } from './logger.ts';

export function registerServerCommands(program: Command): void {
  program
    .command('up')
    .description('run the whole pool of CONFIG in one process: every agent, the DNS server and the API')
    .argument('[config]', 'pool configuration (YAML)')
    .action(async (file: string | undefined, _opts, command: Command) => {
      const path = findConfigPath(globals(command), file);
      const config = requireConfig(globals(command), file);
      checkListenerFiles(config, { source: path });
      const runner = new PoolRunner({ config, logger: createLogger() });
      await runUntilSignal(runner, () => printBanner(config, path!, runner));
    });

  program
    .command('agent')
    .description("run one member's agent (one per machine in a multi-machine pool)")
    .requiredOption('--member <id>', 'the member this agent runs')
    .action(async (opts: { member: string }, command: Command) => {
      const config = requireConfig(globals(command));
      checkListenerFiles(config, { source: findConfigPath(globals(command)), members: [opts.member] });
      const runner = new PoolRunner({
        config,
        logger: createLogger(),
        agents: [opts.member],
        api: false,
        dns: false,
      });
      await runUntilSignal(runner, () =>
        process.stdout.write(`ebb agent ${opts.member}: running (store ${config.store})\n`),
      );
    });

  program
    .command('api')
    .description('run the API alone (several may run on one store)')
    .option('--listen <host:port>', 'address to listen on (default: api.listen of the config)')
    .action(async (opts: { listen?: string }, command: Command) => {
      const config = requireConfig(globals(command));
      const runner = new PoolRunner({
        config,
        logger: createLogger(),
        agents: [],
        api: { listen: opts.listen ?? config.api.listen },
        dns: false,
      });
      await runUntilSignal(runner, () => process.stdout.write(`ebb api: ${runner.api?.url}\n`));
    });

  program
    .command('dns')
    .description('run the pool DNS server alone (several may run on one store)')
    .option('--listen <host:port>', 'address to listen on, UDP and TCP (default: dns.listen of the config)')
    .action(async (opts: { listen?: string }, command: Command) => {
      const config = requireConfig(globals(command));
      const listen = opts.listen ?? config.dns.listen;
      const runner = new PoolRunner({
        config,
        logger: createLogger(),
        agents: [],
        api: false,
        dns: { listen },
      });
      await runUntilSignal(runner, () =>
        process.stdout.write(`ebb dns: ${config.pool.fqdn} on ${listen} (udp, tcp)\n`),
      );
    });
}

/** Starts the runner, prints what it is, and stops it cleanly on SIGINT/SIGTERM. */
async function runUntilSignal(runner: PoolRunner, announce: () => void): Promise<void> {
  await runner.start();
  runner.state.onEvent((event) => process.stdout.write(`${formatEvent(event)}\n`));
  announce();
  // Store and agent timers are unref'd, and a paused tcp service has no listening socket: without this
  // a lone `ebb agent` whose services are all paused would run out of work and exit.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      process.stdout.write(`\nebb: ${signal}: stopping\n`);
      clearInterval(keepAlive);
      void runner.stop().then(resolve);
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}

function formatEvent(event: EbbEvent): string {
  const time = new Date(event.at).toISOString().slice(11, 23);
  const target = event.service ? `${event.member}/${event.service}` : event.member;
  const facts = Object.entries(event.data ?? {})
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return `${time} ${event.code.padEnd(16)} ${target}${facts ? `  ${facts}` : ''}`;
}

function printBanner(config: PoolConfig, path: string, runner: PoolRunner): void {
  const api = runner.api?.url ?? '(no API)';
  const lines = [
    `ebb: pool ${config.pool.name} (${config.pool.fqdn}) is up — ${config.members.length} members, store ${config.store}`,
    ...config.members.map(
      (m) =>
        `  ${m.id} ${m.address}: ${m.services.map((s) => `${s.id} (${s.listeners.map((l) => `${l.protocol}${l.protocol === 'sip' ? `/${l.transport}` : ''} ${l.port}`).join(', ')})`).join(', ')}`,
    ),
    `Console: ${api}/`,
    `API:     ${api}   (OpenAPI: ${api}/v1/openapi.json, metrics: ${api}/metrics)`,
    `DNS:     ${config.dns.listen} (udp, tcp), zone ${config.pool.fqdn}`,
    '',
    'Try, in another terminal:',
    `  npx ebb status`,
    `  dig @${dnsHost(config)} -p ${dnsPort(config)} ${config.pool.fqdn} +short     # the accepting members`,
    `  nc ${config.members[0]!.address} ${firstTcpPort(config) ?? 7000}            # an echo session; type, see it echoed`,
    `  npx ebb load --config ${path} --rate 20 --duration 60s   # steady sessions through the client connector`,
    `  npx ebb pause ${config.members[0]!.id} --reason "patching"`,
    `  npx ebb drain ${config.members[0]!.id}     # waits until it is ready for offline`,
    `  npx ebb resume ${config.members[0]!.id}`,
    'Ctrl-C stops the pool. Events:',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function dnsHost(config: PoolConfig): string {
  return config.dns.listen.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
}

function dnsPort(config: PoolConfig): string {
  return config.dns.listen.replace(/^.*:/, '');
}

function firstTcpPort(config: PoolConfig): number | undefined {
  return config.members[0]!.services.flatMap((s) => s.listeners).find((l) => l.protocol === 'tcp')?.port;
}
