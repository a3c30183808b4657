/**
 * Bad input gets a clear error (SPEC §8): whatever the config holds, loading it either succeeds or throws
 * a ConfigError that names fields — never a TypeError or anything else. Runs are bounded in count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError } from '../core/index.ts';
import { parseConfig, validateConfig } from './index.ts';

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
