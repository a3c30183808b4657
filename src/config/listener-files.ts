import { accessSync, constants, statSync } from 'node:fs';
import { ConfigError, type FieldIssue } from '../core/index.ts';
import type { PoolConfig } from './schema.ts';

/**
 * SPEC §11: a listener's files (`tls.cert`, `tls.key`) that are missing or unreadable are a config error
 * naming the field. Checked by the processes that run those listeners (`ebb up`, `ebb agent`), for their
 * members only — not by every reader of the file: an operator's `ebb status`, or an `ebb api` host, need
 * not hold the members' keys. Relative paths are relative to the config file's directory, as `store`
 * is (`resolveConfigPaths`).
 */
export function checkListenerFiles(
  config: PoolConfig,
  options: { source?: string; members?: readonly string[] } = {},
): void {
  const issues: FieldIssue[] = [];
  config.members.forEach((member, m) => {
    if (options.members && !options.members.includes(member.id)) return;
    member.services.forEach((service, s) => {
      service.listeners.forEach((listener, l) => {
        if (
          (listener.protocol !== 'http' && listener.protocol !== 'sip') ||
          !('tls' in listener) ||
          !listener.tls
        )
          return;
        for (const field of ['cert', 'key'] as const) {
          const problem = unreadable(listener.tls[field]);
          if (problem)
            issues.push({
              path: `members[${m}].services[${s}].listeners[${l}].tls.${field}`,
              message: problem,
            });
        }
      });
    });
  });
  if (issues.length > 0) throw new ConfigError(issues, options.source);
}

/** Why `path` cannot be read as a file, or null when it can. */
function unreadable(path: string): string | null {
  try {
    // A directory or a FIFO opens, or blocks, where a certificate is expected: say so now.
    if (!statSync(path).isFile()) return `${path} is not a file`;
    accessSync(path, constants.R_OK);
    return null;
  } catch (err) {
    return `cannot read ${path}: ${(err as Error).message}`;
  }
}
