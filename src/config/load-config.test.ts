import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, type FieldIssue } from '../core/index.ts';
import {
  configWarnings,
  formatPath,
  loadConfigFile,
  parseConfig,
  splitHostPort,
  validateConfig,
} from './index.ts';

const demoPath = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));

/** The smallest valid pool, as a plain object the tests can bend one field at a time. */
function minimal(): Record<string, unknown> {
  return {
    pool: { name: 'pool1', fqdn: 'pool1.ebb.test' },
    members: [
      {
        id: 'fe01',
        address: '127.0.0.11',
        services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }] }],
      },
    ],
  };
}

/** The issues of the ConfigError `work` throws; fails when it throws anything else or nothing. */
function issuesOf(work: () => unknown): FieldIssue[] {
  try {
    work();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'EBB_BAD_CONFIG');
    assert.equal(err.exitCode, 2);
    assert.ok(err.issues.length > 0);
    return err.issues;
  }
  assert.fail('expected a ConfigError, but the config was accepted');
}

function assertIssue(issues: FieldIssue[], path: string, message: RegExp | string): void {
  const found = issues.find(
    (i) => i.path === path && (typeof message === 'string' ? i.message === message : message.test(i.message)),
  );
  assert.ok(found, `no issue ${path}: ${String(message)} in ${JSON.stringify(issues)}`);
}

const yamlWithListener = (listener: string) => `
pool: { name: pool1, fqdn: pool1.ebb.test }
members:
  - id: fe01
    address: 127.0.0.11
    services:
      - id: echo
        listeners: [ ${listener} ]
`;

describe('config: loading', () => {
  it('loads the demo pool', () => {
    const config = loadConfigFile(demoPath);
    assert.equal(config.pool.name, 'pool1');
    assert.equal(config.pool.fqdn, 'pool1.ebb.test');
    assert.ok(config.members.length >= 3);
    const ids = config.members.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const member of config.members) {
      assert.ok(member.services.length >= 1);
      for (const service of member.services) assert.ok(service.listeners.length >= 1);
    }
    // Operator audit #21: 5353 is mDNS's port (avahi-daemon holds it on most desktops).
    assert.equal(config.dns.listen, '127.0.0.1:5300');
  });

  it('fills in the defaults', () => {
    const config = validateConfig(minimal());
    assert.equal(config.pool.minAccepting, 1);
    assert.equal(config.pool.dnsTtl, 5);
    assert.equal(config.store, 'sqlite:.ebb/state.db');
    assert.equal(config.api.listen, '127.0.0.1:7070');
    assert.deepEqual(config.api.tokens, []);
    assert.equal(config.dns.listen, '127.0.0.1:5300');
    const service = config.members[0]!.services[0]!;
    assert.equal(service.startup, 'automatic');
    assert.equal(service.onRestart, 'keep');
    assert.deepEqual(service.components, []);
    assert.equal(service.minAccepting, undefined);
    assert.equal(service.listeners[0]!.transport, 'tcp');
  });

  it('a sip listener defaults to udp and a trailing dot on the fqdn is dropped', () => {
    const config = parseConfig(`
pool: { name: pool1, fqdn: Pool1.Ebb.Test. }
members:
  - id: fe01
    address: "::1"
    services:
      - id: frontend
        listeners: [ { protocol: sip, port: 5060, upstream: builtin:sip-uas } ]
`);
    assert.equal(config.pool.fqdn, 'pool1.ebb.test');
    assert.equal(config.members[0]!.services[0]!.listeners[0]!.transport, 'udp');
  });

  it('a missing file is a ConfigError naming the file', () => {
    const issues = issuesOf(() => loadConfigFile(join(tmpdir(), 'ebb-no-such-dir', 'nope.yaml')));
    assertIssue(issues, '(file)', /cannot read/);
  });

  it('reads a file from disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebb-config-'));
    try {
      const path = join(dir, 'pool.yaml');
      writeFileSync(path, yamlWithListener('{ protocol: tcp, port: 7000, upstream: 127.0.0.1:17000 }'));
      const config = loadConfigFile(path);
      const listener = config.members[0]!.services[0]!.listeners[0]!;
      assert.ok(listener.protocol === 'tcp' && 'mode' in listener && listener.mode === 'proxy');
      assert.equal(listener.upstream, '127.0.0.1:17000');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("relative store, localState and TLS paths are relative to the file's directory, not the cwd (audit #25)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebb-config-'));
    try {
      const path = join(dir, 'pool.yaml');
      const yaml = yamlWithListener(
        '{ protocol: http, port: 8443, upstream: builtin:web, tls: { cert: tls/cert.pem, key: /etc/ebb/key.pem } }',
      );
      writeFileSync(path, `${yaml}store: sqlite:state/pool.db\nagent: { localState: local }\n`);
      assert.notEqual(process.cwd(), dir);
      const config = loadConfigFile(path);
      assert.equal(config.store, `sqlite:${join(dir, 'state', 'pool.db')}`);
      assert.equal(config.agent.localState, join(dir, 'local'));
      const listener = config.members[0]!.services[0]!.listeners[0]!;
      assert.ok(listener.protocol === 'http' && 'tls' in listener);
      assert.deepEqual(listener.tls, { cert: join(dir, 'tls', 'cert.pem'), key: '/etc/ebb/key.pem' });
      // Absolute paths, etcd and an in-memory store are left as they are.
      writeFileSync(path, `${yaml}store: sqlite:/var/lib/ebb/state.db\n`);
      assert.equal(loadConfigFile(path).store, 'sqlite:/var/lib/ebb/state.db');
      writeFileSync(path, `${yaml}store: etcd://127.0.0.1:2379\n`);
      assert.equal(loadConfigFile(path).store, 'etcd://127.0.0.1:2379');
      writeFileSync(path, `${yaml}store: 'sqlite::memory:'\n`);
      assert.equal(loadConfigFile(path).store, 'sqlite::memory:');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config: errors name the field and the problem', () => {
  it('bad port', () => {
    const issues = issuesOf(() =>
      parseConfig(yamlWithListener('{ protocol: tcp, port: 70000, upstream: builtin:echo }')),
    );
    assert.deepEqual(issues, [
      { path: 'members[0].services[0].listeners[0].port', message: 'must be 1-65535' },
    ]);
    assertIssue(
      issuesOf(() => parseConfig(yamlWithListener('{ protocol: tcp, port: 0, upstream: builtin:echo }'))),
      'members[0].services[0].listeners[0].port',
      'must be 1-65535',
    );
  });

  it('the message of a ConfigError carries path and problem', () => {
    try {
      parseConfig(yamlWithListener('{ protocol: tcp, port: 70000, upstream: builtin:echo }'), 'pool.yaml');
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        /^pool\.yaml: members\[0\]\.services\[0\]\.listeners\[0\]\.port: must be 1-65535$/,
      );
    }
  });

  it('missing fields', () => {
    const raw = minimal();
    delete (raw.pool as Record<string, unknown>).fqdn;
    delete (raw.members as Array<Record<string, unknown>>)[0]!.address;
    const issues = issuesOf(() => validateConfig(raw));
    assertIssue(issues, 'pool.fqdn', 'is required');
    assertIssue(issues, 'members[0].address', 'is required');
    assertIssue(
      issuesOf(() => validateConfig({ pool: { name: 'p', fqdn: 'p.test' } })),
      'members',
      'is required',
    );
  });

  it('a field of the wrong type is not reported as missing', {}, () => {
    // zod 4 leaves `input` out of issues unless `reportInput` is set, so load-config.ts cannot tell a
    // missing field from one of the wrong type.
    const issues = issuesOf(() =>
      parseConfig(yamlWithListener('{ protocol: tcp, port: "7000", upstream: builtin:echo }')),
    );
    assertIssue(issues, 'members[0].services[0].listeners[0].port', 'must be a number');
    // zod 4 reports a non-integer as invalid_type too.
    assertIssue(
      issuesOf(() => parseConfig(yamlWithListener('{ protocol: tcp, port: 1.5, upstream: builtin:echo }'))),
      'members[0].services[0].listeners[0].port',
      'must be an integer',
    );
    const root = issuesOf(() => parseConfig('just a string'));
    assert.ok(
      root.every((i) => i.message !== 'is required'),
      `a present document is not "required": ${JSON.stringify(root)}`,
    );
  });

  it('unknown fields', () => {
    const raw = minimal();
    (raw.pool as Record<string, unknown>).colour = 'blue';
    const member = (raw.members as Array<Record<string, unknown>>)[0]!;
    (
      (member.services as Array<Record<string, unknown>>)[0]!.listeners as Array<Record<string, unknown>>
    )[0]!.tls = true;
    raw.extra = 1;
    const issues = issuesOf(() => validateConfig(raw));
    assertIssue(issues, 'pool', 'unknown field(s): colour');
    assertIssue(issues, 'members[0].services[0].listeners[0]', 'unknown field(s): tls');
    assertIssue(issues, '(root)', 'unknown field(s): extra');
  });

  it('wording an operator can act on (operator audit #33)', () => {
    // What was given, beside what is allowed.
    assertIssue(
      issuesOf(() => parseConfig(yamlWithListener('{ protocol: udp, port: 7000, upstream: builtin:echo }'))),
      'members[0].services[0].listeners[0].protocol',
      'Invalid option: expected one of "tcp"|"sip"|"http", got "udp"',
    );
    const startup = minimal();
    (startup.members as Array<{ services: Array<Record<string, unknown>> }>)[0]!.services[0]!.startup =
      'auto\x1b';
    assertIssue(
      issuesOf(() => validateConfig(startup)),
      'members[0].services[0].startup',
      /^Invalid option: expected one of .*, got "auto\\u001b"$/,
    );
    // An empty file says so.
    for (const empty of ['', '\n# only a comment\n']) {
      assertIssue(
        issuesOf(() => parseConfig(empty)),
        '(root)',
        /^the file is empty/,
      );
    }
    // A typo gets a guess; a real field in the wrong place, or a short unknown name, does not.
    const typo = minimal();
    typo.listners = [];
    (typo.pool as Record<string, unknown>).minAcepting = 1;
    typo.ca = 1;
    typo.port = 1;
    const issues = issuesOf(() => validateConfig(typo));
    assertIssue(issues, '(root)', /listners \(did you mean listeners\?\)/);
    assertIssue(issues, 'pool', 'unknown field(s): minAcepting (did you mean minAccepting?)');
    assertIssue(issues, '(root)', /, ca, port$/);
    // The API on a non-loopback address without tokens is a config error, naming the file.
    const open = minimal();
    open.api = { listen: '0.0.0.0:7070' };
    assert.throws(
      () => validateConfig(open, 'pool.yaml'),
      /^ConfigError: pool\.yaml: api\.listen: refusing to serve the API on 0\.0\.0\.0 without access tokens/,
    );
  });

  it('a capacity guard the pool cannot satisfy is a warning (operator audit #33)', () => {
    const raw = minimal();
    (raw.pool as Record<string, unknown>).minAccepting = 5;
    assert.deepEqual(configWarnings(validateConfig(raw)), [
      'pool.minAccepting: 5 with 1 member: the capacity guard will refuse every pause and stop (without --force)',
    ]);
    const fine = minimal();
    (fine.pool as Record<string, unknown>).minAccepting = 0;
    assert.deepEqual(configWarnings(validateConfig(fine)), []);
    const service = minimal();
    (service.pool as Record<string, unknown>).minAccepting = 0;
    (service.members as Array<{ services: Array<Record<string, unknown>> }>)[0]!.services[0]!.minAccepting =
      1;
    assert.match(
      configWarnings(validateConfig(service))[0]!,
      /^members\[0\]\.services\[0\]\.minAccepting: 1 with 1 member\(s\)/,
    );
  });

  it('bad address', () => {
    for (const address of ['fe01.example', '127.0.0.256', '', '1.2.3']) {
      const raw = minimal();
      (raw.members as Array<Record<string, unknown>>)[0]!.address = address;
      assertIssue(
        issuesOf(() => validateConfig(raw)),
        'members[0].address',
        'must be an IPv4 or IPv6 address',
      );
    }
  });

  it('bad upstream', () => {
    for (const upstream of ['nowhere', '127.0.0.1:0', '127.0.0.1:65536', 'builtin:nope', ':80', '[::1]']) {
      const issues = issuesOf(() =>
        parseConfig(yamlWithListener(`{ protocol: tcp, port: 7000, upstream: "${upstream}" }`)),
      );
      assertIssue(issues, 'members[0].services[0].listeners[0].upstream', /must be host:port/);
    }
    const sipUasOnTcp = issuesOf(() =>
      parseConfig(yamlWithListener('{ protocol: tcp, port: 7000, upstream: builtin:sip-uas }')),
    );
    assertIssue(
      sipUasOnTcp,
      'members[0].services[0].listeners[0].upstream',
      'builtin:sip-uas needs protocol sip',
    );
    const udpTcp = issuesOf(() =>
      parseConfig(yamlWithListener('{ protocol: tcp, transport: udp, port: 7000, upstream: builtin:echo }')),
    );
    assertIssue(udpTcp, 'members[0].services[0].listeners[0].transport', 'must be tcp for protocol tcp');
  });

  it('duplicate member ids', () => {
    const raw = minimal();
    const members = raw.members as Array<Record<string, unknown>>;
    members.push({ ...structuredClone(members[0]!), address: '127.0.0.12' });
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'members[1].id',
      'duplicate member id "fe01"',
    );
  });

  it('duplicate service ids', () => {
    const raw = minimal();
    const services = (raw.members as Array<Record<string, unknown>>)[0]!.services as Array<
      Record<string, unknown>
    >;
    services.push({ id: 'echo', listeners: [{ protocol: 'tcp', port: 7001, upstream: 'builtin:echo' }] });
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'members[0].services[1].id',
      'duplicate service id "echo"',
    );
  });

  it('two listeners on the same address, port and transport', () => {
    const raw = minimal();
    const services = (raw.members as Array<Record<string, unknown>>)[0]!.services as Array<
      Record<string, unknown>
    >;
    services.push({ id: 'other', listeners: [{ protocol: 'tcp', port: 7000, upstream: '127.0.0.1:9' }] });
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'members[0].services[1].listeners[0].port',
      /127\.0\.0\.11:7000\/tcp is already used by members\[0\]\.services\[0\]\.listeners\[0\]/,
    );
  });

  it('the same port is fine on another transport, and on another member address', () => {
    const config = parseConfig(`
pool: { name: pool1, fqdn: pool1.ebb.test }
members:
  - id: fe01
    address: 127.0.0.11
    services:
      - id: frontend
        listeners:
          - { protocol: sip, transport: udp, port: 5060, upstream: builtin:sip-uas }
          - { protocol: sip, transport: tcp, port: 5060, upstream: builtin:sip-uas }
  - id: fe02
    address: 127.0.0.12
    services:
      - id: frontend
        listeners: [ { protocol: sip, transport: udp, port: 5060, upstream: builtin:sip-uas } ]
`);
    assert.equal(config.members.length, 2);
  });

  it('an agent-check port on a listener port of the same address', () => {
    const raw = minimal();
    (raw.members as Array<Record<string, unknown>>)[0]!.agentCheckPort = 7000;
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'members[0].agentCheckPort',
      /already used/,
    );
  });

  it('invalid YAML', () => {
    const issues = issuesOf(() => parseConfig('pool: { name: p\nmembers: [ {'));
    assert.match(issues[0]!.path, /^line \d+$|^\(yaml\)$/);
    assert.ok(issues[0]!.message.length > 0);
    issuesOf(() => parseConfig('a: 1\na: 2'));
    issuesOf(() => parseConfig('\t- tab indented'));
  });

  it('bad token spec', () => {
    const raw = minimal();
    raw.api = { tokens: [{ name: 'ops', role: 'operator', token: 's3cret-in-the-file' }] };
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'api.tokens[0].token',
      'must be env:NAME (token values come from the environment)',
    );
    raw.api = { tokens: [{ name: 'ops', role: 'root', token: 'env:EBB_OPS_TOKEN' }] };
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'api.tokens[0].role',
      /viewer|operator|admin/,
    );
    raw.api = { tokens: [{ name: 'ops', role: 'viewer' }] };
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'api.tokens[0].token',
      'is required',
    );
    raw.api = { tokens: [{ name: 'ops', role: 'viewer', token: 'env:OK_NAME' }] };
    assert.equal(validateConfig(raw).api.tokens[0]!.token, 'env:OK_NAME');
  });

  it('bad api and dns listen addresses, store, lease and ids', () => {
    const cases: Array<[string, unknown, string]> = [
      ['api', { listen: 'localhost' }, 'api.listen'],
      ['dns', { listen: '127.0.0.1:99999' }, 'dns.listen'],
      ['store', 'redis://x', 'store'],
      ['agent', { leaseTtl: '5 seconds' }, 'agent.leaseTtl'],
    ];
    for (const [field, value, path] of cases) {
      const raw = minimal();
      raw[field] = value;
      assertIssue(
        issuesOf(() => validateConfig(raw)),
        path,
        /must be/,
      );
    }
    const raw = minimal();
    (raw.members as Array<Record<string, unknown>>)[0]!.id = 'FE_01';
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'members[0].id',
      /DNS label/,
    );
  });

  it('an empty member list and an empty service list', () => {
    const raw = minimal();
    raw.members = [];
    assertIssue(
      issuesOf(() => validateConfig(raw)),
      'members',
      'must list at least one member',
    );
    const raw2 = minimal();
    (raw2.members as Array<Record<string, unknown>>)[0]!.services = [];
    assertIssue(
      issuesOf(() => validateConfig(raw2)),
      'members[0].services',
      'must list at least one service',
    );
  });

  it('a config over 1 MB is refused before parsing', () => {
    assertIssue(
      issuesOf(() => parseConfig(`# ${'x'.repeat(1 << 20)}`)),
      '(file)',
      /larger than 1 MB/,
    );
  });

  it('alias bombs are refused', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      ...Array.from({ length: 9 }, (_, i) => {
        const prev = i === 0 ? 'a' : `l${i - 1}`;
        return `l${i}: &l${i} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`;
      }),
    ].join('\n');
    issuesOf(() => parseConfig(bomb));
  });
});

describe('config: helpers', () => {
  it('formatPath', () => {
    assert.equal(formatPath([]), '(root)');
    assert.equal(
      formatPath(['members', 1, 'services', 0, 'listeners', 0, 'port']),
      'members[1].services[0].listeners[0].port',
    );
    assert.equal(formatPath(['pool', 'fqdn']), 'pool.fqdn');
  });

  it('splitHostPort', () => {
    assert.deepEqual(splitHostPort('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
    assert.deepEqual(splitHostPort('[::1]:5060'), { host: '::1', port: 5060 });
    assert.deepEqual(splitHostPort('upstream.local:65535'), { host: 'upstream.local', port: 65535 });
    for (const bad of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '::1:80', ':80', 'a:b', '']) {
      assert.equal(splitHostPort(bad), null, bad);
    }
  });
});
