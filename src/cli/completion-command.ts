import { Argument, type Command } from 'commander';
import { manPage } from './man-page.ts';
import { ebbVersion } from './version-command.ts';

/** `ebb completion bash|zsh|fish`: a completion script built from the commands and options themselves. */
export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish)')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh', 'fish']))
    .action((shell: 'bash' | 'zsh' | 'fish') => {
      process.stdout.write(completionScript(program, shell));
    });
  program
    .command('man')
    .description('print the manual page (roff): ebb man | man -l -')
    .action(() => {
      process.stdout.write(manPage(program, ebbVersion));
    });
}

interface CommandWords {
  /** `config check` for a nested command. */
  path: string;
  options: string[];
}

function words(program: Command): { commands: CommandWords[]; globals: string[] } {
  const flags = (command: Command) =>
    command.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined));
  const commands: CommandWords[] = [];
  const visit = (command: Command, prefix: string) => {
    for (const sub of command.commands) {
      const path = prefix ? `${prefix} ${sub.name()}` : sub.name();
      commands.push({ path, options: [...flags(sub), '--help'] });
      visit(sub, path);
    }
  };
  visit(program, '');
  return { commands, globals: [...flags(program), '--help', '--version'] };
}

export function completionScript(program: Command, shell: 'bash' | 'zsh' | 'fish'): string {
  const { commands, globals } = words(program);
  const top = commands.filter((c) => !c.path.includes(' ')).map((c) => c.path);
  if (shell === 'fish') {
    const lines = [
      '# ebb completion for fish: ebb completion fish > ~/.config/fish/completions/ebb.fish',
      `complete -c ebb -f -n '__fish_use_subcommand' -a '${top.join(' ')}'`,
      ...globals.filter((f) => f.startsWith('--')).map((f) => `complete -c ebb -l ${f.slice(2)}`),
      ...commands
        .filter((c) => !c.path.includes(' '))
        .flatMap((c) =>
          c.options
            .filter((f) => f.startsWith('--'))
            .map((f) => `complete -c ebb -n '__fish_seen_subcommand_from ${c.path}' -l ${f.slice(2)}`),
        ),
      `complete -c ebb -n '__fish_seen_subcommand_from config' -a check`,
      `complete -c ebb -n '__fish_seen_subcommand_from startup' -a 'automatic manual disabled'`,
      `complete -c ebb -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'`,
    ];
    return `${lines.join('\n')}\n`;
  }
  const cases = commands
    .map((c) => {
      const values =
        c.path === 'startup' ? ' automatic manual disabled' : c.path === 'completion' ? ' bash zsh fish' : '';
      const sub = c.path === 'config' ? ' check' : '';
      return `    ${JSON.stringify(c.path)}) opts="${c.options.join(' ')} ${globals.join(' ')}${values}${sub}" ;;`;
    })
    .join('\n');
  const bash = `_ebb() {
  local cur words_before path opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in -*) ;; *) if [ -z "$path" ]; then path="$w"; elif [ "$path" = config ]; then path="config $w"; fi ;; esac
  done
  case "$path" in
${cases}
    *) opts="${top.join(' ')} ${globals.join(' ')}" ;;
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  case "$cur" in -*) ;; *) [ -n "$path" ] && COMPREPLY+=( $(compgen -f -- "$cur") ) ;; esac
}
complete -F _ebb ebb
`;
  if (shell === 'bash') return `# ebb completion for bash: source <(ebb completion bash)\n${bash}`;
  return `#compdef ebb\n# ebb completion for zsh: ebb completion zsh > "\${fpath[1]}/_ebb"\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}
