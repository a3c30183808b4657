import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { EbbError, ExitCode } from '../core/index.ts';
import { createLogger, logSettings, prettyLine } from './logger.ts';

describe('CLI logging: EBB_LOG_LEVEL and --log-format', () => {
  it('defaults: warn; pretty on a terminal, json otherwise', () => {
    assert.deepEqual(logSettings({}, undefined, true), { level: 'warn', format: 'pretty' });
    assert.deepEqual(logSettings({}, undefined, false), { level: 'warn', format: 'json' });
    assert.deepEqual(logSettings({ EBB_LOG_LEVEL: 'debug' }, 'json', true), {
      level: 'debug',
      format: 'json',
    });
  });

  it('a bad level is a usage error naming the variable and the choices', () => {
    assert.throws(
      () => logSettings({ EBB_LOG_LEVEL: 'bogus' }, undefined, true),
      (err: unknown) =>
        err instanceof EbbError &&
        err.exitCode === ExitCode.usage &&
        err.message ===
          'EBB_LOG_LEVEL: "bogus" is not a log level (fatal, error, warn, info, debug, trace, silent)',
    );
    assert.throws(() => logSettings({}, 'xml', true), /--log-format: "xml" is not a log format/);
  });

  it('pretty lines read like the event lines, escape control characters and keep no JSON braces', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString()));
    const logger = createLogger({ level: 'warn', format: 'pretty' }, out);
    logger.info('not shown at warn');
    logger.warn(
      { member: 'fe01', code: 'EBB_STORE_UNAVAILABLE', err: 'refused\x1b[31m' },
      'store unreachable',
    );
    await new Promise((r) => setImmediate(r));
    const text = chunks.join('');
    assert.match(
      text,
      /^\d\d:\d\d:\d\d\.\d{3} warn {13}store unreachable {2}member=fe01 code=EBB_STORE_UNAVAILABLE err=refused\\u001b\[31m\n$/,
    );
  });

  it('an error object shows its message, not its stack', () => {
    const line = prettyLine(
      JSON.stringify({
        level: 50,
        time: 0,
        msg: 'boom',
        err: { type: 'Error', message: 'bad', stack: 'at x' },
      }),
    );
    assert.equal(line, '00:00:00.000 error            boom  err="bad"');
  });
});
