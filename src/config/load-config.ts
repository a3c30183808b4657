import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type FieldIssue } from '../core/index.ts';
import { closestName, fieldNames } from './config-hints.ts';
import { resolveConfigPaths } from './config-paths.ts';
import { splitHostPort } from './fields.ts';
import { configSchema, type PoolConfig } from './schema.ts';

const maxConfigBytes = 1 << 20;

export function loadConfigFile(path: string): PoolConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      [{ path: '(file)', message: `cannot read ${path}: ${(err as Error).message}` }],
      path,
    );
  }
  return resolveConfigPaths(parseConfig(text, path), dirname(resolve(path)));
}

export function parseConfig(text: string, source = 'config'): PoolConfig {
  if (text.length > maxConfigBytes)
    throw new ConfigError([{ path: '(file)', message: 'is larger than 1 MB' }], source);
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? `line ${err.linePos[0].line}` : '(yaml)';
    throw new ConfigError([{ path: where, message: (err as Error).message.split('\n')[0]! }], source);
  }
  return validateConfig(raw, source);
}

export function validateConfig(raw: unknown, source = 'config'): PoolConfig {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ConfigError(result.error.issues.map(toFieldIssue), source);
  const issues = crossFieldIssues(result.data);
  if (issues.length > 0) throw new ConfigError(issues, source);
  return result.data;
}

/** `members[1].services[0].listeners[0].port` from zod's path array. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  }
  return out || '(root)';
}

const knownFields = fieldNames(configSchema);

function toFieldIssue(issue: z.core.$ZodIssue): FieldIssue {
  let message = issue.message;
  if (issue.code === 'invalid_type' && issue.input === undefined) message = 'is required';
  else if (issue.code === 'invalid_type' && issue.input === null && issue.path.length === 0)
    message =
      'the file is empty: a pool configuration has pool, members and optionally store, dns, api, agent';
  else if (issue.code === 'unrecognized_keys') {
    const hints = issue.keys.map((key) => {
      const near = closestName(key, knownFields);
      return near ? `${key} (did you mean ${near}?)` : key;
    });
    message = `unknown field(s): ${hints.join(', ')}`;
  } else if (/^Invalid option/.test(message)) {
    // Operator audit #33: say what was given, not only what is allowed.
    const given = givenValue(issue);
    if (given !== undefined) message = `${message}, got ${given}`;
  }
  return { path: formatPath(issue.path), message };
}

/** The offending value, shortened and with control characters escaped: it is printed to a terminal. */
function givenValue(issue: z.core.$ZodIssue): string | undefined {
  let input: unknown = issue.input;
  const last = issue.path.at(-1);
  if (input !== null && typeof input === 'object' && last !== undefined)
    input = (input as Record<PropertyKey, unknown>)[last];
  if (input === undefined || (input !== null && typeof input === 'object')) return undefined;
  // JSON escapes C0 controls; DEL and C1 are escaped here (they reach a terminal).
  const text = JSON.stringify(input).slice(0, 60);
  return text.replace(
    // eslint-disable-next-line no-control-regex -- escaping control characters is the point
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Rules that span fields: unique ids, and no two listeners on the same address, port and transport. */
function crossFieldIssues(config: PoolConfig): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const memberIds = new Set<string>();
  const bound = new Map<string, string>();
  config.members.forEach((member, m) => {
    if (memberIds.has(member.id))
      issues.push({ path: `members[${m}].id`, message: `duplicate member id "${member.id}"` });
    memberIds.add(member.id);
    const serviceIds = new Set<string>();
    member.services.forEach((service, s) => {
      const at = `members[${m}].services[${s}]`;
      if (serviceIds.has(service.id))
        issues.push({ path: `${at}.id`, message: `duplicate service id "${service.id}"` });
      serviceIds.add(service.id);
      service.listeners.forEach((listener, l) => {
        const key = `${member.address}:${listener.port}/${listener.transport}`;
        const path = `${at}.listeners[${l}].port`;
        const other = bound.get(key);
        if (other) issues.push({ path, message: `${key} is already used by ${other}` });
        else bound.set(key, path.replace(/\.port$/, ''));
      });
    });
    if (member.agentCheckPort !== undefined) {
      const key = `${member.address}:${member.agentCheckPort}/tcp`;
      if (bound.has(key))
        issues.push({
          path: `members[${m}].agentCheckPort`,
          message: `${key} is already used by ${bound.get(key)}`,
        });
    }
  });
  // SPEC §8, checked here too so that the error names the file and `ebb config check` finds it.
  const api = splitHostPort(config.api.listen);
  if (api && !isLoopbackHost(api.host) && config.api.tokens.length === 0)
    issues.push({
      path: 'api.listen',
      message: `refusing to serve the API on ${api.host} without access tokens (api.tokens); bind 127.0.0.1`,
    });
  return issues;
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}
