import { Command, CommanderError, Option } from 'commander';
import { EbbError, ExitCode } from '../core/index.ts';
import { registerCompletionCommand } from './completion-command.ts';
import { registerConfigCommands } from './config-commands.ts';
import { registerControlCommands } from './control-commands.ts';
import { registerLoadCommand } from './load-command.ts';
import { addHelpFooters } from './help-text.ts';
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
  // Every command's help lists the options above too (operator audit #31).
  .configureHelp({ showGlobalOptions: true })
  .configureOutput({
    // With --json, a usage error is one JSON object on stdout (report()), not commander's text.
    writeErr: (text) => {
      if (!jsonWanted()) process.stderr.write(text);
    },
  })
  .showHelpAfterError()
  .exitOverride();

registerServerCommands(program);
registerStatusCommands(program);
registerControlCommands(program);
registerLoadCommand(program);
registerMaintainCommand(program);
registerConfigCommands(program);
registerVersionCommand(program);
registerCompletionCommand(program);
addHelpFooters(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exit(report(err));
}

/** `--json` anywhere on the command line (commander may not have parsed it when usage fails). */
function jsonWanted(): boolean {
  return process.argv.includes('--json');
}

function report(err: unknown): number {
  const json = jsonWanted();
  if (err instanceof CommanderError) {
    // Help and version end with exit code 0; bad usage with 2 (SPEC §7).
    if (err.exitCode === 0) return 0;
    if (json) {
      const message = err.message.replace(/^error: /, '');
      process.stdout.write(`${JSON.stringify({ error: { code: 'EBB_USAGE', message } }, null, 2)}\n`);
    }
    return ExitCode.usage;
  }
  if (err instanceof EbbError) {
    if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
    // Messages may carry text from the API (a name, a reason another operator typed): escaped.
    else process.stderr.write(`ebb: ${safeText(err.message)}\n`);
    return err.exitCode;
  }
  process.stderr.write(`ebb: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return ExitCode.error;
}
