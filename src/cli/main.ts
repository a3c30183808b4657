import { Command, CommanderError, Option } from 'commander';
import { EbbError, ExitCode } from '../core/index.ts';
import { registerConfigCommands } from './config-commands.ts';
import { registerControlCommands } from './control-commands.ts';
import { registerLoadCommand } from './load-command.ts';
import { registerMaintainCommand } from './maintain-command.ts';
import { safeText } from './safe-text.ts';
import { registerServerCommands } from './server-commands.ts';
import { registerStatusCommands } from './status-commands.ts';
import { ebbVersion, registerVersionCommand } from './version-command.ts';

/**
 * The `ebb` command (SPEC §7). This folder is the only place that calls process.exit; everything else
 * throws EbbErrors whose exitCode says how the command ends.
 */
const program = new Command('ebb')
  .description(
    'Take a server, or one service on it, out of a pool for maintenance without dropping a session.',
  )
  .version(ebbVersion)
  .addOption(new Option('--config <file>', 'pool configuration (YAML)').env('EBB_CONFIG'))
  .addOption(
    new Option(
      '--api <url>',
      'URL of the Ebb API (default: from the config, else http://127.0.0.1:7070)',
    ).env('EBB_API'),
  )
  .addOption(new Option('--token <token>', 'API token').env('EBB_TOKEN'))
  .option('--json', 'print JSON for scripts')
  .showHelpAfterError()
  .exitOverride();

registerServerCommands(program);
registerStatusCommands(program);
registerControlCommands(program);
registerLoadCommand(program);
registerMaintainCommand(program);
registerConfigCommands(program);
registerVersionCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exit(report(err));
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version end with exit code 0; bad usage with 2 (SPEC §7).
    return err.exitCode === 0 ? 0 : ExitCode.usage;
  }
  const json = process.argv.includes('--json');
  if (err instanceof EbbError) {
    if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
    // Messages may carry text from the API (a name, a reason another operator typed): escaped.
    else process.stderr.write(`ebb: ${safeText(err.message)}\n`);
    return err.exitCode;
  }
  process.stderr.write(`ebb: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return ExitCode.error;
}
