import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runEbb } from './harness/ebb-process.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Bad usage an operator meets before any pool answers (operator audit #29–#32, #41, shell completion):
 * exit 2 with the option named, JSON errors with --json, help that shows the global options.
 */
describe('ebb usage: errors and help', () => {
  // Port 9 (discard) on loopback: nothing answers, so a command that got past its checks would exit 1.
  const noApi = ['--api', 'http://127.0.0.1:9'];

  it('--json makes a usage error a JSON error on stdout (audit #32)', async () => {
    const run = await runEbb(['pause', '--json']);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, '');
    assert.deepEqual(JSON.parse(run.stdout), {
      error: { code: 'EBB_USAGE', message: "missing required argument 'member'" },
    });
    const plain = await runEbb(['pause']);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /missing required argument 'member'/);
  });

  it('--api must be a URL; a trailing /v1 is not doubled (audit #30)', async () => {
    const bad = await runEbb(['--api', 'notaurl', 'status']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^ebb: --api: "notaurl" is not an http\(s\) URL/);
    const v1 = await runEbb(['--api', 'http://127.0.0.1:9/v1/', 'status']);
    assert.equal(v1.code, 1);
    assert.match(v1.stderr, /cannot reach the Ebb API at http:\/\/127\.0\.0\.1:9 \(/);
  });

  it('ebb audit --limit must be a whole number from 1 to 1000 (audit #29)', async () => {
    for (const limit of ['abc', '-5', '0', '1001']) {
      const run = await runEbb([...noApi, 'audit', '--limit', limit]);
      assert.equal(run.code, 2, `${limit}: ${run.stderr}`);
      assert.match(run.stderr, /--limit: .* is not a whole number from 1 to 1000/);
    }
  });

  it('a deadline over 30d is refused (audit #41)', async () => {
    const run = await runEbb([...noApi, 'pause', 'fe01', '--deadline', '99999d']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--deadline: "99999d" is not a duration .*at most 30d/);
  });

  it('help shows the global options, examples, durations and exit codes (audit #31)', async () => {
    const help = await runEbb(['pause', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Arguments:\n {2}member +member id \(e\.g\. fe01\)/);
    assert.match(
      help.stdout,
      /Global Options:[\s\S]*--config <file>[\s\S]*--api <url>[\s\S]*--token[\s\S]*--json/,
    );
    assert.match(help.stdout, /Examples:\n {2}ebb pause fe01 --reason "patch KB123"/);
    assert.match(help.stdout, /Durations: 500ms, 30s, 10m, 2h, 1d/);
    assert.match(help.stdout, /Exit codes: 0 done · 1 error · 2 bad usage or config · 3 timeout · 4 refused/);
    const startup = await runEbb(['startup', '--help']);
    assert.match(startup.stdout, /--service <id> +the service \(required\)/);
  });

  it('ebb completion bash completes commands and their options', async () => {
    const script = await runEbb(['completion', 'bash']);
    assert.equal(script.code, 0);
    const complete = (words: string[]) => {
      const run = spawnSync(
        'bash',
        [
          '-c',
          `eval "$SCRIPT"; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _ebb; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { env: { SCRIPT: script.stdout, PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' },
      );
      assert.equal(run.status, 0, run.stderr);
      return run.stdout.split('\n').filter(Boolean);
    };
    assert.deepEqual(complete(['ebb', 'dr']), ['drain']);
    assert.ok(complete(['ebb', 'pause', 'fe01', '--dr']).includes('--dry-run'));
    assert.deepEqual(complete(['ebb', 'startup', 'fe01', '--service', 'x', 'ma']), ['manual']);
    assert.deepEqual(complete(['ebb', 'config', 'ch']), ['check']);
    for (const shell of ['zsh', 'fish']) {
      const other = await runEbb(['completion', shell]);
      assert.equal(other.code, 0);
      assert.match(other.stdout, /ebb/);
    }
    assert.equal((await runEbb(['completion', 'tcsh'])).code, 2);
  });

  it('ebb man is a valid manual page with every command, and contrib/man/ebb.1 is current', async () => {
    const man = await runEbb(['man']);
    assert.equal(man.code, 0, man.stderr);
    const shipped = readFileSync(join(root, 'contrib', 'man', 'ebb.1'), 'utf8');
    assert.equal(shipped, man.stdout, 'regenerate: ebb man > contrib/man/ebb.1');
    for (const command of [
      'up',
      'agent',
      'status',
      'pause',
      'drain',
      'maintain',
      'audit',
      'config check',
      'completion',
    ])
      assert.ok(man.stdout.includes(`.B ebb ${command.replaceAll('-', '\\-')}`), command);
    const groff = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z'], {
      input: man.stdout,
      encoding: 'utf8',
    });
    if (groff.error) return; // no groff here: the text checks above still hold
    assert.equal(groff.status, 0, groff.stderr);
    assert.equal(groff.stderr, '', 'no troff warnings');
  });
});
