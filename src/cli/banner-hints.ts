import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PoolConfig } from '../config/index.ts';
import type { PoolStatus } from '../control/index.ts';
import { safeText } from './safe-text.ts';

const defaultApiListen = '127.0.0.1:7070';

/**
 * The "Try, in another terminal" lines of `ebb up`'s banner. Each command must work as printed: a
 * command without `--config` goes to `./ebb.yaml`'s API, else to 127.0.0.1:7070 (the demo's), so a
 * pool found neither way gets `--config FILE`, and one with tokens says which variable to export.
 */
export function bannerHints(config: PoolConfig, path: string, cwd = process.cwd()): string[] {
  const withConfig = foundWithoutConfig(config, path, cwd) ? '' : ` --config ${shellWord(path)}`;
  const first = config.members[0]!;
  const lines = ['Try, in another terminal:'];
  const token = config.api.tokens.find((t) => t.role !== 'viewer') ?? config.api.tokens[0];
  if (token) {
    const variable = token.token.slice('env:'.length);
    lines.push(
      `  export EBB_TOKEN="$${variable}"     # token "${token.name}" (${token.role}); the API needs one`,
    );
  }
  lines.push(
    `  npx ebb${withConfig} status`,
    `  dig @${dnsHost(config)} -p ${dnsPort(config)} ${config.pool.fqdn} +short     # the accepting members`,
    `  nc ${first.address} ${firstTcpPort(config) ?? 7000}            # an echo session; type, see it echoed`,
    `  npx ebb load --config ${shellWord(path)} --rate 20 --duration 60s   # steady sessions through the client connector`,
    `  npx ebb${withConfig} pause ${first.id} --reason "patching"`,
    `  npx ebb${withConfig} drain ${first.id}     # waits until it is ready for offline`,
    `  npx ebb${withConfig} resume ${first.id}`,
  );
  return lines;
}

/** Whether `ebb status` run in `cwd` without `--config` reaches this pool's API. */
function foundWithoutConfig(config: PoolConfig, path: string, cwd: string): boolean {
  const env = process.env['EBB_CONFIG'];
  if (env) return resolve(cwd, env) === resolve(cwd, path);
  const local = resolve(cwd, 'ebb.yaml');
  if (existsSync(local)) return local === resolve(cwd, path);
  return config.api.listen === defaultApiListen;
}

/** A path as one shell word: as it is when plain, else single-quoted. */
function shellWord(text: string): string {
  return /^[\w./@%+=:,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function dnsHost(config: PoolConfig): string {
  return config.dns.listen.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
}

function dnsPort(config: PoolConfig): string {
  return config.dns.listen.replace(/^.*:/, '');
}

function firstTcpPort(config: PoolConfig): number | undefined {
  return config.members[0]!.services.flatMap((s) => s.listeners).find((l) => l.protocol === 'tcp')?.port;
}

/**
 * What came back as it was left (SPEC §3, operator audit #39): `fe01: 6 services come back paused
 * ("kill test", by ops since 2026-12-01 11:02:03 UTC)`, a line per member and intent. Escaped: reasons
 * come from the store.
 */
export function restoredLines(status: PoolStatus): string[] {
  const lines: string[] = [];
  for (const member of status.members) {
    const groups = new Map<string, number>();
    for (const service of member.services) {
      if (service.intent === 'running' || service.intentBy === 'config') continue;
      const since = service.intentAt === null ? '' : ` since ${utcTime(service.intentAt)}`;
      const reason = service.reason ? `${JSON.stringify(service.reason)}, ` : '';
      const key = `${service.intent === 'paused' ? 'paused' : 'stopped'} (${reason}by ${service.intentBy}${since})`;
      groups.set(key, (groups.get(key) ?? 0) + 1);
    }
    for (const [what, n] of groups)
      lines.push(
        safeText(`${member.id}: ${n} service${n === 1 ? '' : 's'} come${n === 1 ? 's' : ''} back ${what}`),
      );
  }
  return lines;
}

function utcTime(at: number): string {
  return `${new Date(at).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}
