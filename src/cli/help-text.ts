import type { Command } from 'commander';

/** Examples under each command's `--help` (operator audit #31). */
const examples: Record<string, string[]> = {
  up: ['ebb up examples/demo.yaml', 'EBB_LOG_LEVEL=info ebb up pool.yaml --log-format json'],
  agent: ['ebb agent --config /etc/ebb/pool.yaml --member fe01'],
  api: ['ebb api --config pool.yaml --listen 127.0.0.1:7070'],
  dns: ['ebb dns --config pool.yaml --listen 127.0.0.1:5300'],
  status: ['ebb status', 'ebb status --member fe01,fe02 --watch 1s', 'ebb status --json | jq .members[0]'],
  pause: [
    'ebb pause fe01 --reason "patch KB123"',
    'ebb pause fe01 --service echo --deadline 10m --wait --timeout 15m',
    'ebb pause fe01 --dry-run',
  ],
  resume: ['ebb resume fe01', 'ebb resume fe01 --service echo'],
  start: ['ebb start fe01 --service call-park'],
  stop: ['ebb stop fe01 --service echo --graceful --deadline 5m --wait', 'ebb stop fe01 --service echo'],
  startup: ['ebb startup fe03 --service call-park manual'],
  drain: ['ebb drain fe01 --reason "kernel update" --timeout 30m --deadline 20m'],
  load: [
    'ebb load --config examples/demo.yaml --rate 20 --duration 60s',
    'ebb load --service echo --hold 5s',
  ],
  maintain: ["ebb maintain --config pool.yaml --exec 'apt-get -y upgrade && reboot' --drain-timeout 30m"],
  audit: ['ebb audit --member fe01 --since 1d', 'ebb audit --action force --limit 20'],
  completion: ['source <(ebb completion bash)', 'ebb completion zsh > "${fpath[1]}/_ebb"'],
  man: ['ebb man | man -l -'],
  check: ['ebb config check pool.yaml', 'ebb config check --json pool.yaml'],
};

const durations = 'Durations: 500ms, 30s, 10m, 2h, 1d (at most 30d).';
const exitCodes =
  'Exit codes: 0 done · 1 error · 2 bad usage or config · 3 timeout · 4 refused by the capacity guard · 5 not authorised.';

/** Global options under every command's help, then its examples, durations and exit codes. */
export function addHelpFooters(program: Command): void {
  program.addHelpText('after', `\n${durations}\n${exitCodes}`);
  const visit = (command: Command) => {
    for (const sub of command.commands) {
      const lines = examples[sub.name()] ?? [];
      const shown = lines.length > 0 ? `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n` : '';
      sub.addHelpText('after', `${shown}\n${durations}\n${exitCodes}`);
      visit(sub);
    }
  };
  visit(program);
}
