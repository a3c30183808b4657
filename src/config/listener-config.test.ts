import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, type FieldIssue } from '../core/index.ts';
import {
  checkListenerFiles,
  configSchema,
  parseConfig,
  validateConfig,
  type HttpListenerConfig,
  type ListenerConfig,
  type SipListenerConfig,
} from './index.ts';

/** The issues of the ConfigError `work` throws; fails when it throws anything else or nothing. */
function issuesOf(work: () => unknown): FieldIssue[] {
  try {
    work();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
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

/** A one-member pool whose one service has `listeners` and the service fields of `service`. */
function pool(listeners: unknown[], service: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pool: { name: 'pool1', fqdn: 'pool1.ebb.test' },
    members: [{ id: 'fe01', address: '127.0.0.11', services: [{ id: 'svc', ...service, listeners }] }],
  };
}

const at = 'members[0].services[0]';
const listenersOf = (raw: unknown): ListenerConfig[] =>
  validateConfig(raw).members[0]!.services[0]!.listeners;
/** Through the schema only: http listeners parse there, but `validateConfig` refuses them for now. */
const schemaListeners = (raw: unknown): ListenerConfig[] =>
  configSchema.parse(raw).members[0]!.services[0]!.listeners;

describe('config: listeners by protocol, parsed to values', () => {
  it('tcp: mode proxy, transport tcp, the upstream kept as written and its target', () => {
    const [echo, proxy] = listenersOf(
      pool([
        { protocol: 'tcp', port: 7000, upstream: 'builtin:echo' },
        { protocol: 'tcp', transport: 'tcp', mode: 'proxy', port: 7001, upstream: '[::1]:17001' },
      ]),
    );
    assert.deepEqual(echo, {
      protocol: 'tcp',
      mode: 'proxy',
      transport: 'tcp',
      port: 7000,
      upstream: 'builtin:echo',
      target: { kind: 'builtin', name: 'echo' },
    });
    assert.deepEqual(proxy, {
      protocol: 'tcp',
      mode: 'proxy',
      transport: 'tcp',
      port: 7001,
      upstream: '[::1]:17001',
      target: { kind: 'address', host: '::1', port: 17001 },
    });
  });

  it('sip: udp by default, and the sip settings with their defaults', () => {
    const [sip] = listenersOf(pool([{ protocol: 'sip', port: 5060, upstream: 'registrar.local:15060' }]));
    assert.deepEqual(sip, {
      protocol: 'sip',
      transport: 'udp',
      port: 5060,
      upstream: 'registrar.local:15060',
      target: { kind: 'address', host: 'registrar.local', port: 15060 },
      reroute: 'reject',
      retryAfter: 30,
      maxIdle: '2h',
      maxIdleMs: 7_200_000,
      closeSpread: '10s',
      closeSpreadMs: 10_000,
      drainFlows: false,
    } satisfies SipListenerConfig);
  });

  it('sip over tls: port 5061 by default, tls files kept (SPEC §11, §14)', () => {
    const [sip] = listenersOf(
      pool([
        {
          protocol: 'sip',
          transport: 'tls',
          upstream: 'builtin:sip-uas',
          tls: { cert: 'c.pem', key: 'k.pem' },
        },
      ]),
    );
    assert.equal(sip!.port, 5061);
    assert.deepEqual((sip as SipListenerConfig).tls, { cert: 'c.pem', key: 'k.pem' });
  });

  it('sip settings on the service are the defaults of its sip listeners; a listener may set its own', () => {
    const listeners = listenersOf(
      pool(
        [
          { protocol: 'sip', transport: 'udp', port: 5060, upstream: 'builtin:sip-uas' },
          {
            protocol: 'sip',
            transport: 'tcp',
            port: 5060,
            upstream: 'builtin:sip-uas',
            reroute: 'reject',
            retryAfter: 5,
            maxIdle: '10m',
          },
          { protocol: 'tcp', port: 7000, upstream: 'builtin:echo' },
        ],
        { reroute: 'redirect', retryAfter: 9, sipMaxIdle: '30m' },
      ),
    );
    const [udp, tcp] = listeners as [SipListenerConfig, SipListenerConfig];
    assert.deepEqual(
      [udp.reroute, udp.retryAfter, udp.maxIdle, udp.maxIdleMs],
      ['redirect', 9, '30m', 1_800_000],
    );
    assert.deepEqual(
      [tcp.reroute, tcp.retryAfter, tcp.maxIdle, tcp.maxIdleMs],
      ['reject', 5, '10m', 600_000],
    );
    assert.ok(!('retryAfter' in listeners[2]!));
  });

  it('the parsed service no longer carries the sip settings: its sip listeners do', () => {
    const service = validateConfig(
      pool([{ protocol: 'sip', port: 5060, upstream: 'builtin:sip-uas' }], { retryAfter: 9 }),
    ).members[0]!.services[0]!;
    assert.ok(!('retryAfter' in service) && !('reroute' in service) && !('sipMaxIdle' in service));
  });

  it('http: the schema parses it (tls, closeSpread in ms), and the config still refuses it for now', () => {
    const [plain, secure] = schemaListeners(
      pool([
        { protocol: 'http', port: 8080, upstream: '127.0.0.1:3000' },
        {
          protocol: 'http',
          port: 8443,
          upstream: 'builtin:web',
          tls: { cert: 'web.pem', key: 'web.key' },
          closeSpread: '1.5s',
        },
      ]),
    );
    assert.deepEqual(plain, {
      protocol: 'http',
      transport: 'tcp',
      port: 8080,
      upstream: '127.0.0.1:3000',
      target: { kind: 'address', host: '127.0.0.1', port: 3000 },
      closeSpread: '2s',
      closeSpreadMs: 2000,
    } satisfies HttpListenerConfig);
    assert.deepEqual(secure, {
      protocol: 'http',
      transport: 'tcp',
      port: 8443,
      upstream: 'builtin:web',
      target: { kind: 'builtin', name: 'web' },
      tls: { cert: 'web.pem', key: 'web.key' },
      closeSpread: '1.5s',
      closeSpreadMs: 1500,
    } satisfies HttpListenerConfig);
    // Since the http front end exists (SPEC §10), such a pool validates.
    const config = validateConfig(pool([{ protocol: 'http', port: 8080, upstream: 'builtin:web' }]));
    assert.equal(config.members[0]!.services[0]!.listeners[0]!.protocol, 'http');
  });
});

describe('config: listener errors name the field', () => {
  const listenerIssues = (listener: Record<string, unknown>, service: Record<string, unknown> = {}) =>
    issuesOf(() => validateConfig(pool([listener], service)));

  it('an invalid protocol lists the valid ones; a missing one is required', () => {
    assertIssue(
      listenerIssues({ protocol: 'gopher', port: 70, upstream: 'builtin:echo' }),
      `${at}.listeners[0].protocol`,
      'Invalid option: expected one of "tcp"|"sip"|"http", got "gopher"',
    );
    assertIssue(
      listenerIssues({ port: 7000, upstream: 'builtin:echo' }),
      `${at}.listeners[0].protocol`,
      'is required',
    );
  });

  it('tcp mode kernel: no upstream (an error naming the field if given); proxy still needs one', () => {
    assert.deepEqual(listenersOf(pool([{ protocol: 'tcp', mode: 'kernel', port: 5432 }])), [
      { protocol: 'tcp', mode: 'kernel', transport: 'tcp', port: 5432 },
    ]);
    assertIssue(
      listenerIssues({ protocol: 'tcp', mode: 'kernel', port: 5432, upstream: '127.0.0.1:5433' }),
      `${at}.listeners[0].upstream`,
      /must not be given with mode kernel/,
    );
    assertIssue(
      listenerIssues({ protocol: 'tcp', port: 7000 }),
      `${at}.listeners[0].upstream`,
      'is required',
    );
  });

  it('a tcp mode that does not exist is refused, naming the modes', () => {
    assertIssue(
      listenerIssues({ protocol: 'tcp', mode: 'turbo', port: 7000, upstream: 'builtin:echo' }),
      `${at}.listeners[0].mode`,
      /proxy/,
    );
    assertIssue(
      listenerIssues({ protocol: 'sip', mode: 'proxy', port: 5060, upstream: 'builtin:sip-uas' }),
      `${at}.listeners[0]`,
      'unknown field(s): mode',
    );
  });

  it("each kind takes only its own fields, and only its own protocol's built-in upstream", () => {
    const cases: Array<[Record<string, unknown>, string, string | RegExp]> = [
      [
        { protocol: 'tcp', port: 7000, upstream: 'builtin:echo', retryAfter: 5 },
        '',
        'unknown field(s): retryAfter',
      ],
      [
        { protocol: 'tcp', port: 7000, upstream: 'builtin:echo', closeSpread: '1s' },
        '',
        'unknown field(s): closeSpread',
      ],
      [
        { protocol: 'sip', port: 5060, upstream: 'builtin:sip-uas', tls: { cert: 'a', key: 'b' } },
        '.tls',
        'only for transport tls or wss',
      ],
      [
        { protocol: 'sip', transport: 'tls', upstream: 'builtin:sip-uas' },
        '.tls',
        'is required for transport tls',
      ],
      [{ protocol: 'sip', transport: 'tcp', upstream: 'builtin:sip-uas' }, '.port', 'is required'],
      [
        { protocol: 'http', port: 80, upstream: 'builtin:web', transport: 'tcp' },
        '',
        'unknown field(s): transport',
      ],
      [
        { protocol: 'http', port: 80, upstream: 'builtin:web', tls: { cert: 'a', key: 'b', ca: 'c' } },
        '.tls',
        'unknown field(s): ca',
      ],
      [
        { protocol: 'http', port: 80, upstream: 'builtin:web', tls: { cert: 'a' } },
        '.tls.key',
        'is required',
      ],
      [
        { protocol: 'http', port: 80, upstream: 'builtin:web', tls: { cert: '', key: 'b' } },
        '.tls.cert',
        'must be a path',
      ],
      [
        { protocol: 'http', port: 80, upstream: 'builtin:web', closeSpread: 'soon' },
        '.closeSpread',
        /must be a duration/,
      ],
      [
        { protocol: 'sip', port: 5060, upstream: 'builtin:sip-uas', maxIdle: '2 hours' },
        '.maxIdle',
        /must be a duration/,
      ],
      [
        { protocol: 'sip', transport: 'sctp', port: 5061, upstream: 'builtin:sip-uas' },
        '.transport',
        /"udp"\|"tcp"\|"tls"\|"ws"\|"wss"/,
      ],
      [
        { protocol: 'http', port: 80, upstream: 'builtin:echo' },
        '.upstream',
        'builtin:echo needs protocol tcp',
      ],
      [
        { protocol: 'sip', port: 5060, upstream: 'builtin:echo' },
        '.upstream',
        'builtin:echo needs protocol tcp',
      ],
      [
        { protocol: 'tcp', port: 7000, upstream: 'builtin:web' },
        '.upstream',
        'builtin:web needs protocol http',
      ],
      [
        { protocol: 'sip', port: 5060, upstream: 'builtin:web' },
        '.upstream',
        'builtin:web needs protocol http',
      ],
      [
        { protocol: 'http', port: 80, upstream: 'builtin:sip-uas' },
        '.upstream',
        'builtin:sip-uas needs protocol sip',
      ],
      [{ protocol: 'http', port: 80, upstream: 'web' }, '.upstream', /must be host:port/],
      [{ protocol: 'sip', port: 5060, upstream: 'builtin:nope' }, '.upstream', /must be host:port/],
      [
        { protocol: 'http', transport: 'udp', port: 80, upstream: 'builtin:web' },
        '',
        'unknown field(s): transport',
      ],
    ];
    for (const [listener, field, message] of cases) {
      assertIssue(listenerIssues(listener), `${at}.listeners[0]${field}`, message);
    }
  });

  it('sip settings on a service without a sip listener: each is named, "applies to sip listeners only"', () => {
    const issues = listenerIssues(
      { protocol: 'tcp', port: 7000, upstream: 'builtin:echo' },
      { reroute: 'redirect', retryAfter: 5, sipMaxIdle: '1h' },
    );
    for (const field of ['reroute', 'retryAfter', 'sipMaxIdle']) {
      assertIssue(issues, `${at}.${field}`, 'applies to sip listeners only');
    }
    assert.equal(issues.length, 3);
  });
});

describe('config: durations use the grammar of the API and the CLI', () => {
  const agent = (leaseTtl: unknown) => ({
    ...pool([{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }]),
    agent: { leaseTtl },
  });

  it('a unit, or a bare number of seconds (YAML reads `leaseTtl: 5` as a number)', () => {
    const cases: Array<[unknown, string, number]> = [
      ['5s', '5s', 5000],
      ['500ms', '500ms', 500],
      ['1.5m', '1.5m', 90_000],
      [5, '5', 5000],
      [0.25, '0.25', 250],
      ['7', '7', 7000],
    ];
    for (const [written, text, ms] of cases) {
      const config = validateConfig(agent(written));
      assert.deepEqual([config.agent.leaseTtl, config.agent.leaseTtlMs], [text, ms], String(written));
    }
    const yaml = parseConfig(`
pool: { name: pool1, fqdn: pool1.ebb.test }
agent: { leaseTtl: 3 }
members: [ { id: fe01, address: 127.0.0.11, services: [ { id: e, listeners: [ { protocol: tcp, port: 7000, upstream: builtin:echo } ] } ] } ]
`);
    assert.equal(yaml.agent.leaseTtlMs, 3000);
  });

  it('defaults: leaseTtl 5s, one worker thread per CPU (at most 8), whether agent is left out or given without it', () => {
    const without = validateConfig(pool([{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }]));
    assert.deepEqual(without.agent, {
      leaseTtl: '5s',
      leaseTtlMs: 5000,
      localState: '.ebb/local',
      workers: Math.min(8, availableParallelism()),
    });
    const empty = validateConfig({
      ...pool([{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }]),
      agent: {},
    });
    assert.deepEqual(empty.agent, without.agent);
  });

  it('with an etcd store, a lease shorter than 3s is refused, saying why (issue 16, fault 3)', () => {
    const etcd = (leaseTtl: unknown) => ({ ...agent(leaseTtl), store: 'etcd://127.0.0.1:2379' });
    for (const short of ['2s', '2999ms', 1]) {
      assertIssue(
        issuesOf(() => validateConfig(etcd(short))),
        'agent.leaseTtl',
        /^must be at least 3s with an etcd store: .*election.*announced down/,
      );
    }
    assert.equal(validateConfig(etcd('3s')).agent.leaseTtlMs, 3000);
    // SQLite leases are renewed on the same machine every 200 ms: 2 s stays allowed there.
    assert.equal(validateConfig(agent('2s')).agent.leaseTtlMs, 2000);
  });

  it('anything else is refused, naming the field', () => {
    for (const bad of ['5 seconds', '-1s', -1, '1e3s', 1e21, true, '', 's', null, Number.NaN]) {
      assertIssue(
        issuesOf(() => validateConfig(agent(bad))),
        'agent.leaseTtl',
        'must be a duration such as 500ms, 5s, 10m',
      );
    }
  });
});

describe('config: listener files (SPEC §11)', () => {
  function httpsPool(cert: string, key: string): ReturnType<typeof configSchema.parse> {
    return configSchema.parse({
      pool: { name: 'pool1', fqdn: 'pool1.ebb.test' },
      members: [
        {
          id: 'fe01',
          address: '127.0.0.11',
          services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }] }],
        },
        {
          id: 'fe02',
          address: '127.0.0.12',
          services: [
            {
              id: 'web',
              listeners: [{ protocol: 'http', port: 8443, upstream: 'builtin:web', tls: { cert, key } }],
            },
          ],
        },
      ],
    });
  }

  it('a missing or unreadable tls file is a config error naming tls.cert or tls.key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebb-tls-files-'));
    try {
      const cert = join(dir, 'web.pem');
      writeFileSync(cert, 'not checked here: the tls setup reads it');
      mkdirSync(join(dir, 'a-directory'));
      const missing = issuesOf(() =>
        checkListenerFiles(httpsPool(cert, join(dir, 'nope.key')), { source: 'pool.yaml' }),
      );
      assert.equal(missing.length, 1);
      assertIssue(missing, 'members[1].services[0].listeners[0].tls.key', /^cannot read .*nope\.key: ENOENT/);
      const directory = issuesOf(() =>
        checkListenerFiles(httpsPool(join(dir, 'a-directory'), join(dir, 'gone'))),
      );
      assertIssue(directory, 'members[1].services[0].listeners[0].tls.cert', /a-directory is not a file$/);
      assertIssue(directory, 'members[1].services[0].listeners[0].tls.key', /cannot read/);
      checkListenerFiles(httpsPool(cert, cert));
      // An agent checks its own member's files only.
      checkListenerFiles(httpsPool(cert, join(dir, 'nope.key')), { members: ['fe01'] });
      assert.throws(
        () => checkListenerFiles(httpsPool(cert, join(dir, 'nope.key')), { members: ['fe02'] }),
        ConfigError,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config: mode embedded (SPEC §12)', () => {
  it('http and tcp listeners run by the server that embeds Ebb: a port, no upstream, a closeSpread', () => {
    const [web, raw] = listenersOf(
      pool([
        { protocol: 'http', mode: 'embedded', port: 8080 },
        { protocol: 'tcp', mode: 'embedded', port: 8081, closeSpread: '5s' },
      ]),
    );
    assert.deepEqual(web, {
      protocol: 'http',
      mode: 'embedded',
      transport: 'tcp',
      port: 8080,
      closeSpread: '2s',
      closeSpreadMs: 2000,
    });
    assert.equal(raw!.protocol, 'tcp');
    assert.equal((raw as { closeSpreadMs: number }).closeSpreadMs, 5000);
  });

  it('an upstream, another protocol, or a service half embedded are errors naming the field', () => {
    assertIssue(
      issuesOf(() =>
        validateConfig(pool([{ protocol: 'http', mode: 'embedded', port: 8080, upstream: 'x:1' }])),
      ),
      `${at}.listeners[0]`,
      'unknown field(s): upstream',
    );
    assertIssue(
      issuesOf(() => validateConfig(pool([{ protocol: 'sip', mode: 'embedded', port: 5060 }]))),
      `${at}.listeners[0].protocol`,
      'must be http or tcp for mode embedded',
    );
    assertIssue(
      issuesOf(() =>
        validateConfig(
          pool([
            { protocol: 'http', mode: 'embedded', port: 8080 },
            { protocol: 'tcp', port: 7000, upstream: 'builtin:echo' },
          ]),
        ),
      ),
      `${at}.listeners`,
      'mode embedded must be on every listener of the service or on none',
    );
  });
});
