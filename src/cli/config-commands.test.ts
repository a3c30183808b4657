import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../config/index.ts';
import { EbbError, ExitCode } from '../core/index.ts';
import { summarise } from './config-commands.ts';
import { requireMember } from './server-commands.ts';

const config = validateConfig({
  pool: { name: 'multi', fqdn: 'multi.ebb.test' },
  members: ['m1', 'm2', 'm3'].map((id, i) => ({
    id,
    address: `127.0.0.${31 + i}`,
    services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }] }],
  })),
});

describe('config check and --member', () => {
  it('the summary counts members, services and listeners', () => {
    assert.equal(
      summarise(config),
      'pool multi (multi.ebb.test): 3 members, 3 services, 3 listeners; ' +
        `store ${config.store}; API ${config.api.listen}; DNS ${config.dns.listen}`,
    );
  });

  it('an unknown --member is a usage error listing the members (audit #11)', () => {
    assert.doesNotThrow(() => requireMember(config, 'm2'));
    assert.throws(
      () => requireMember(config, 'zz'),
      (err: unknown) =>
        err instanceof EbbError &&
        err.exitCode === ExitCode.usage &&
        err.message === '--member: "zz" is not a member of pool multi (m1, m2, m3)',
    );
  });
});
