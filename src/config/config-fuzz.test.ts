/**
 * Bad input gets a clear error (SPEC §8): whatever the config holds, loading it either succeeds or throws
 * a ConfigError that names fields — never a TypeError or anything else. Runs are bounded in count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, durationMs } from '../core/index.ts';
import { isEmbeddedListener } from './listener-schema.ts';
import {
  configSchema,
  parseConfig,
  validateConfig,
  type ListenerConfig,
  type PoolConfig,
  type UpstreamTarget,
} from './index.ts';

/** Runs `work`; true when it accepted the input, false for a well-formed ConfigError; fails on anything else. */
function onlyConfigErrors(work: () => unknown): boolean {
  try {
    work();
    return true;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    assert.ok(err.issues.length > 0, 'a ConfigError lists at least one issue');
    for (const issue of err.issues) {
      assert.equal(typeof issue.path, 'string');
      assert.ok(issue.path.length > 0);
      assert.equal(typeof issue.message, 'string');
      assert.ok(issue.message.length > 0);
    }
    return false;
  }
}

const yamlToken = fc.constantFrom(
  'pool:',
  'members:',
  'services:',
  'listeners:',
  '- ',
  '  ',
  '\n',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  ': ',
  '&a ',
  '*a',
  '!!str ',
  '!!binary ',
  '!tag ',
  '? ',
  '|',
  '>',
  '#',
  '"',
  "'",
  '---\n',
  '...\n',
  '%YAML 1.2\n',
  '<<: *a',
  'id: fe01',
  'address: 127.0.0.11',
  'port: 7000',
  'port: 99999',
  'protocol: tcp',
  'upstream: builtin:echo',
  'name: pool1',
  'fqdn: pool1.ebb.test',
  '__proto__: ',
  'constructor: ',
  'null',
  '~',
  '1e400',
  '-0',
  '0x1F',
  '\u0000',
  '\uFEFF',
);

const yamlish = fc.oneof(
  fc.array(yamlToken, { maxLength: 60 }).map((parts) => parts.join('')),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

/** A valid pool in plain objects, for mutation. */
function validRaw(): Record<string, unknown> {
  return {
    pool: { name: 'pool1', fqdn: 'pool1.ebb.test', minAccepting: 1, dnsTtl: 5 },
    store: 'sqlite:.ebb/state.db',
    dns: { listen: '127.0.0.1:5353' },
    api: {
      listen: '127.0.0.1:7070',
      tokens: [{ name: 'ops', role: 'operator', token: 'env:EBB_OPS_TOKEN' }],
    },
    agent: { leaseTtl: '5s', localState: '.ebb/local' },
    members: [
      {
        id: 'fe01',
        address: '127.0.0.11',
        agentCheckPort: 9777,
        services: [
          {
            id: 'frontend',
            name: 'Front-End',
            components: ['registrar', 'monitoring-agent'],
            startup: 'automatic',
            listeners: [
              { protocol: 'sip', transport: 'udp', port: 5060, upstream: '127.0.0.1:15060' },
              { protocol: 'sip', transport: 'tcp', port: 5060, upstream: '127.0.0.1:15060' },
            ],
          },
          { id: 'echo', listeners: [{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }] },
        ],
      },
      {
        id: 'fe02',
        address: '127.0.0.12',
        services: [{ id: 'echo', listeners: [{ protocol: 'tcp', port: 7000, upstream: 'builtin:echo' }] }],
      },
    ],
  };
}

/** Every path to a value inside `value`, as arrays of keys. */
function pathsOf(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...prefix, i])));
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  return out;
}

function setAt(root: Record<string, unknown>, path: Array<string | number>, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = replacement;
  return root;
}

describe('config fuzz', () => {
  it('a valid pool is accepted (the mutations below start from it)', () => {
    assert.ok(onlyConfigErrors(() => validateConfig(validRaw())));
  });

  it('random YAML-ish text never throws anything but ConfigError', () => {
    fc.assert(
      fc.property(yamlish, (text) => {
        onlyConfigErrors(() => parseConfig(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('random JSON values never throw anything but ConfigError, as objects or as YAML text', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        onlyConfigErrors(() => validateConfig(value));
        onlyConfigErrors(() => parseConfig(JSON.stringify(value)));
        onlyConfigErrors(() => parseConfig(stringify(value)));
      }),
      { numRuns: 300 },
    );
  });

  it('a valid pool with one field replaced by anything never throws anything but ConfigError', () => {
    const paths = pathsOf(validRaw());
    const replacement = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom(undefined, null, '', 0, -1, 65536, 1.5, '127.0.0.11', 'builtin:echo', [], {}),
      fc.string({ maxLength: 30 }),
    );
    fc.assert(
      fc.property(fc.nat({ max: paths.length - 1 }), replacement, (index, value) => {
        const raw = setAt(validRaw(), paths[index]!, value);
        onlyConfigErrors(() => validateConfig(raw));
        if (value !== undefined) onlyConfigErrors(() => parseConfig(JSON.stringify(raw)));
      }),
      { numRuns: 400 },
    );
  });

  it('objects with prototype-looking keys are refused as unknown fields, not merged', () => {
    const raw = JSON.parse(
      '{"pool":{"name":"p","fqdn":"p.test","__proto__":{"minAccepting":9}},"members":[]}',
    ) as unknown;
    assert.equal(
      onlyConfigErrors(() => validateConfig(raw)),
      false,
    );
    assert.equal(({} as Record<string, unknown>).minAccepting, undefined);
  });
});

/** Per unit, how many stay within the longest duration (30d, `maxDurationMs`). */
const unitLimit = { ms: 100_001, s: 100_001, m: 43_201, h: 721, d: 31 } as const;

/** What a user may write as a duration: a number and a unit, or a bare number of seconds (text or YAML number). */
const durationInput = fc.oneof(
  fc
    .tuple(fc.nat({ max: 100_000 }), fc.constantFrom('ms', 's', 'm', 'h', 'd'))
    .map(([n, unit]) => `${n % unitLimit[unit]}${unit}`),
  fc.nat({ max: 100_000 }),
  fc.nat({ max: 100_000 }).map(String),
  fc.tuple(fc.nat({ max: 999 }), fc.integer({ min: 1, max: 9 })).map(([s, tenths]) => `${s}.${tenths}s`),
);

const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6().map((ip) => `[${ip}]`),
  fc.domain().filter((d) => !d.includes(':')),
);
const addressUpstream = fc
  .tuple(address, fc.integer({ min: 1, max: 65535 }))
  .map(([host, p]) => `${host}:${p}`);

/** One valid listener of each kind as a user writes it, with the optional fields present or not. */
const listenerInput = fc.oneof(
  fc.record(
    {
      protocol: fc.constant('tcp'),
      mode: fc.constant('proxy'),
      transport: fc.constant('tcp'),
      upstream: fc.oneof(addressUpstream, fc.constant('builtin:echo')),
    },
    { requiredKeys: ['protocol', 'upstream'] },
  ),
  fc.record(
    {
      protocol: fc.constant('sip'),
      transport: fc.constantFrom('udp', 'tcp'),
      upstream: fc.oneof(addressUpstream, fc.constant('builtin:sip-uas')),
      reroute: fc.constantFrom('reject', 'redirect'),
      retryAfter: fc.integer({ min: 0, max: 86_400 }),
      maxIdle: durationInput,
      closeSpread: durationInput,
      drainFlows: fc.boolean(),
    },
    { requiredKeys: ['protocol', 'upstream'] },
  ),
  fc.record(
    {
      protocol: fc.constant('http'),
      upstream: fc.oneof(addressUpstream, fc.constant('builtin:web')),
      tls: fc.record({ cert: fc.constant('web.pem'), key: fc.constant('web.key') }),
      closeSpread: durationInput,
    },
    { requiredKeys: ['protocol', 'upstream'] },
  ),
);

/** A valid pool of one member whose services hold the listeners, each on its own port. */
const poolInput = fc
  .record({
    listeners: fc.array(listenerInput, { minLength: 1, maxLength: 6 }),
    ports: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 6, maxLength: 6 }),
    leaseTtl: fc.option(durationInput, { nil: undefined }),
    sipDefaults: fc.record(
      {
        reroute: fc.constantFrom('reject', 'redirect'),
        retryAfter: fc.integer({ min: 0, max: 86_400 }),
        sipMaxIdle: durationInput,
      },
      { requiredKeys: [] },
    ),
  })
  .map(({ listeners, ports, leaseTtl, sipDefaults }) => {
    const withSip = listeners.some((l) => l.protocol === 'sip');
    return {
      pool: { name: 'pool1', fqdn: 'pool1.ebb.test' },
      ...(leaseTtl === undefined ? {} : { agent: { leaseTtl } }),
      members: [
        {
          id: 'fe01',
          address: '127.0.0.11',
          services: [
            {
              id: 'svc',
              ...(withSip ? sipDefaults : {}),
              listeners: listeners.map((l, i) => ({ ...l, port: ports[i]! })),
            },
          ],
        },
      ],
    };
  });

/** `upstream` as the target names it. */
function written(target: UpstreamTarget): string {
  if (target.kind === 'builtin') return `builtin:${target.name}`;
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

function without(value: object, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k)));
}

/** A parsed listener back as input: the fields as written, without what was derived from them. */
function inputOf(listener: ListenerConfig): Record<string, unknown> {
  const derived = ['target', 'maxIdleMs', 'closeSpreadMs'];
  // An http listener takes no transport: its parsed `transport: tcp` is for DNS SRV only.
  return without(listener, listener.protocol === 'http' ? [...derived, 'transport'] : derived);
}

function inputOfPool(config: PoolConfig): unknown {
  return {
    ...config,
    agent: without(config.agent, ['leaseTtlMs']),
    members: config.members.map((m) => ({
      ...m,
      services: m.services.map((s) => ({ ...s, listeners: s.listeners.map(inputOf) })),
    })),
  };
}

describe('config round trip', () => {
  it('property: a valid config parses to values that agree with what was written, and parses again the same', () => {
    fc.assert(
      fc.property(poolInput, (raw) => {
        const config = configSchema.parse(raw);
        const listeners = config.members[0]!.services[0]!.listeners;
        const rawListeners = raw.members[0]!.services[0]!.listeners;
        listeners.forEach((listener, i) => {
          const given = rawListeners[i]!;
          assert.ok(!isEmbeddedListener(listener));
          assert.equal(listener.protocol, given.protocol);
          assert.equal(listener.port, given.port);
          if (listener.protocol === 'tcp' && listener.mode === 'kernel') return assert.fail('not generated');
          assert.equal(listener.upstream, given.upstream);
          assert.equal(written(listener.target), listener.upstream);
          assert.equal(
            listener.transport,
            'transport' in given ? given.transport : listener.protocol === 'sip' ? 'udp' : 'tcp',
          );
          if (listener.protocol === 'sip') assert.equal(listener.maxIdleMs, durationMs(listener.maxIdle));
          if (listener.protocol === 'http' || listener.protocol === 'sip')
            assert.equal(listener.closeSpreadMs, durationMs(listener.closeSpread));
        });
        assert.equal(config.agent.leaseTtlMs, durationMs(config.agent.leaseTtl));
        assert.deepEqual(configSchema.parse(inputOfPool(config)), config);
        // Without http listeners (refused until their kind is registered) the whole load agrees.
        if (!listeners.some((l) => l.protocol === 'http'))
          assert.deepEqual(parseConfig(stringify(raw)), config);
      }),
      { numRuns: 300 },
    );
  });
});
