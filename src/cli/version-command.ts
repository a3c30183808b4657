import type { Command } from 'commander';
import { globals, printJson } from './cli-context.ts';

/** The package's version; `version-command.test.ts` keeps it equal to package.json's. */
export const ebbVersion = '0.1.0';

export function registerVersionCommand(program: Command): void {
  program
    .command('version')
    .description('print the version (as --version does)')
    .action((_opts, command: Command) => {
      if (globals(command).json) return printJson({ version: ebbVersion });
      process.stdout.write(`${ebbVersion}\n`);
    });
}
