import type { Command, Option } from 'commander';

/**
 * roff-escaped text: a leading dot or quote would start a request, a backslash an escape; characters
 * beyond ASCII (`×`, `→`) as `\[u00D7]`, which every troff reads whatever its input encoding.
 */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^[.']/gm, '\\&$&')
    .replace(
      /[^\x20-\x7e\n]/gu,
      (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`,
    );
}

function optionLines(options: readonly Option[]): string[] {
  return options.flatMap((o) => ['.TP', `.B ${roff(o.flags)}`, roff(o.description)]);
}

/**
 * `ebb(1)` from the commands themselves (operator audit: "a man page"), so it cannot drift from `--help`:
 * `ebb man > ebb.1`, or `man -l contrib/man/ebb.1` (a copy that a test keeps current).
 */
export function manPage(program: Command, version: string): string {
  const lines = [
    `.TH EBB 1 "" "ebb ${version}" "User Commands"`,
    '.SH NAME',
    `ebb \\- ${roff(program.description())}`,
    '.SH SYNOPSIS',
    '.B ebb',
    '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH GLOBAL OPTIONS',
    ...optionLines(program.options),
    '.SH COMMANDS',
  ];
  const visit = (command: Command, prefix: string) => {
    for (const sub of command.commands) {
      if (sub.name() === 'help') continue;
      const name = `${prefix}${sub.name()}`;
      const args = sub.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`));
      lines.push('.SS', `.B ebb ${roff([name, ...args].join(' '))}`, '.PP', roff(sub.description()));
      if (sub.options.length > 0) lines.push('.RS', ...optionLines(sub.options), '.RE');
      visit(sub, `${name} `);
    }
  };
  visit(program, '');
  lines.push(
    '.SH DURATIONS',
    roff('500ms, 30s, 10m, 2h, 1d (at most 30d); a bare number is seconds.'),
    '.SH ENVIRONMENT',
    '.TP',
    '.B EBB_CONFIG, EBB_API, EBB_TOKEN',
    roff('--config, --api and --token.'),
    '.TP',
    '.B EBB_LOG_LEVEL, EBB_LOG_FORMAT',
    roff(
      'log level (fatal, error, warn, info, debug, trace, silent) and format (pretty, json) of ebb up, agent, api, dns.',
    ),
    '.TP',
    '.B NO_COLOR, FORCE_COLOR',
    roff('no colour on a terminal; colour in a pipe.'),
    '.SH EXIT STATUS',
    roff(
      '0 done; 1 error; 2 bad usage or config; 3 timeout; 4 refused by the capacity guard; 5 not authorised.',
    ),
    '.SH SEE ALSO',
    roff('docs/cli.md, docs/configuration.md, docs/api.md in the Ebb package.'),
  );
  return `${lines.join('\n')}\n`;
}
