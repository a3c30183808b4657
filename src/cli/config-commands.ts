import type { Command } from 'commander';
import { TokenTable } from '../auth/index.ts';
import { checkListenerFiles, configWarnings, type PoolConfig } from '../config/index.ts';
import { ConfigError } from '../core/index.ts';
import { findConfigPath, globals, printJson, requireConfig } from './cli-context.ts';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('work with pool configuration files');
  config
    .command('check')
    .description(
      'validate a pool configuration without starting anything: exit 0 with a summary, exit 2 naming the field',
    )
    .argument('[file]', 'pool configuration (YAML); default --config, EBB_CONFIG or ./ebb.yaml')
    .action((file: string | undefined, _opts, command: Command) => {
      const options = globals(command);
      const path = findConfigPath(options, file);
      const pool = requireConfig(options, file);
      const warnings = machineWarnings(pool, path);
      if (options.json) return printJson({ file: path, ok: true, summary: summarise(pool), warnings });
      process.stdout.write(`${path}: ok: ${summarise(pool)}\n`);
      for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
    });
}

/** `pool pool1 (pool1.ebb.test): 3 members, 18 services, 21 listeners; store sqlite:…; API 127.0.0.1:7070`. */
export function summarise(config: PoolConfig): string {
  const services = config.members.flatMap((m) => m.services);
  const listeners = services.flatMap((s) => s.listeners).length;
  const tokens = config.api.tokens.length;
  return (
    `pool ${config.pool.name} (${config.pool.fqdn}): ${plural(config.members.length, 'member')}, ` +
    `${plural(services.length, 'service')}, ${plural(listeners, 'listener')}; store ${config.store}; ` +
    `API ${config.api.listen}${tokens > 0 ? ` (${plural(tokens, 'token')})` : ''}; DNS ${config.dns.listen}`
  );
}

/**
 * What depends on this machine rather than the file: token variables (`ebb up` and `ebb api` need them)
 * and TLS files (the agents of those members need them). Warnings, not errors: a file checked in CI or on
 * an operator's laptop is still a good file.
 */
function machineWarnings(config: PoolConfig, path: string | undefined): string[] {
  const warnings: string[] = [];
  const collect = (check: () => void, who: string) => {
    try {
      check();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const issue of err.issues) warnings.push(`${issue.path}: ${issue.message} here (${who} need it)`);
    }
  };
  collect(() => TokenTable.fromConfig(config), '`ebb up` and `ebb api`');
  collect(() => checkListenerFiles(config, path === undefined ? {} : { source: path }), 'the agents');
  warnings.push(...configWarnings(config));
  return warnings;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
