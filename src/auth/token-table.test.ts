import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../config/index.ts';
import { ConfigError, UnauthorisedError } from '../core/index.ts';
import { roleFor } from './roles.ts';
import { TokenTable } from './token-table.ts';

const config = validateConfig({
  pool: { name: 'p', fqdn: 'p.ebb.test' },
  api: {
    listen: '127.0.0.1:7070',
    tokens: [
      { name: 'watcher', role: 'viewer', token: 'env:T_VIEW' },
      { name: 'ops', role: 'operator', token: 'env:T_OPS' },
      { name: 'root', role: 'admin', token: 'env:T_ADMIN' },
    ],
  },
  members: [
    {
      id: 'a',
      address: '127.0.0.1',
      services: [{ id: 's', listeners: [{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }] }],
    },
  ],
});
const env = {
  T_VIEW: 'view-token-0123456789',
  T_OPS: 'ops-token-0123456789',
  T_ADMIN: 'admin-token-0123456789',
};

describe('tokens and roles', () => {
  const table = TokenTable.fromConfig(config, env);

  it('maps a token to its name and role', () => {
    assert.deepEqual(table.authorise(`Bearer ${env.T_OPS}`, 'operator'), { name: 'ops', role: 'operator' });
    assert.deepEqual(table.authorise(`Bearer ${env.T_ADMIN}`, 'operator'), { name: 'root', role: 'admin' });
  });

  it('401 without a token or with a wrong one; 403 with too weak a role', () => {
    const status = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof UnauthorisedError);
        assert.equal(err.exitCode, 5);
        return err.httpStatus;
      }
      return 200;
    };
    assert.equal(
      status(() => table.authorise(undefined, 'viewer')),
      401,
    );
    assert.equal(
      status(() => table.authorise('Bearer nope', 'viewer')),
      401,
    );
    assert.equal(
      status(() => table.authorise(`Basic ${env.T_OPS}`, 'viewer')),
      401,
    );
    assert.equal(
      status(() => table.authorise(`Bearer ${env.T_VIEW}`, 'operator')),
      403,
    );
    assert.equal(
      status(() => table.authorise(`Bearer ${env.T_OPS}`, 'admin')),
      403,
    );
    assert.equal(
      status(() => table.authorise(`Bearer ${env.T_VIEW}`, 'viewer')),
      200,
    );
  });

  it('identify names the holder of any valid token, whatever its role, for the audit of a refusal', () => {
    assert.deepEqual(table.identify(`Bearer ${env.T_VIEW}`), { name: 'watcher', role: 'viewer' });
    assert.deepEqual(table.identify(`bearer  ${env.T_ADMIN} `), { name: 'root', role: 'admin' });
    assert.equal(table.identify('Bearer not-a-token-0123456789'), null);
    assert.equal(table.identify(undefined), null);
    assert.equal(table.identify(`Basic ${env.T_OPS}`), null);
    assert.equal(TokenTable.none().identify(`Bearer ${env.T_OPS}`), null, 'without tokens nobody is known');
  });

  it('pause/resume/drain need operator; start/stop/startup and --force need admin', () => {
    assert.equal(roleFor('pause', false), 'operator');
    assert.equal(roleFor('resume', false), 'operator');
    assert.equal(roleFor('stop', false), 'admin');
    assert.equal(roleFor('start', false), 'admin');
    assert.equal(roleFor('startup', false), 'admin');
    assert.equal(roleFor('pause', true), 'admin');
  });

  it('a missing or short environment variable is a config error naming the field', () => {
    assert.throws(
      () => TokenTable.fromConfig(config, { ...env, T_OPS: undefined }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /api\.tokens\[1\]\.token: environment variable T_OPS is not set/.test(err.message),
    );
    assert.throws(() => TokenTable.fromConfig(config, { ...env, T_VIEW: 'short' }), /at least 16 characters/);
  });

  it('without tokens everyone is the local admin', () => {
    const open = TokenTable.fromConfig({ ...config, api: { ...config.api, tokens: [] } }, {});
    assert.equal(open.enabled, false);
    assert.deepEqual(open.authorise(undefined, 'admin'), { name: 'local', role: 'admin' });
  });
});
