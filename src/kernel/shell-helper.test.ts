import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShellHelper } from './shell-helper.ts';

// Read-only requests only: this runs in whatever namespace the test runs in, and never writes a rule.
describe(
  'ShellHelper: one long-lived shell runs the kernel commands',
  { skip: process.platform !== 'linux' },
  () => {
    it('answers each request in turn with its exit code and output, the output framed by its length', async () => {
      const shell = new ShellHelper(1 << 20);
      const [listed, missing, unknown] = await Promise.all([
        shell.run('ss', '127.0.0.1:1'),
        shell.run('list', 'ebb_no_such_table_here', 'm_none'),
        shell.run('nope' as 'ss'),
      ]);
      assert.equal(listed.code, 0);
      assert.notEqual(missing.code, 0);
      assert.match(missing.output, /No such file or directory|Operation not permitted/);
      assert.deepEqual(unknown, { code: 2, output: 'unknown request' });
    });

    it('output over its limit fails the request and the next one starts a new shell', async () => {
      const shell = new ShellHelper(10);
      await assert.rejects(shell.run('list', 'ebb_no_such_table_here', 'm_none'), /output over 10 bytes/);
      assert.equal((await shell.run('ss', '127.0.0.1:1')).code, 0);
    });
  },
);
