import { readFileSync, writeFileSync } from 'node:fs';

const sysctl = '/proc/sys/net/ipv4/tcp_migrate_req';

export type RequestMigration = 'on' | 'turned-on' | { unavailable: string };

/**
 * Makes sure that closing a listening socket of an SO_REUSEPORT group hands the connections in its
 * accept queue (and half-open ones) to another socket of the group instead of resetting them: Linux's
 * `net.ipv4.tcp_migrate_req` (5.14+, per network namespace). A process handing over (SPEC §13) closes its
 * listeners while its successor's listen beside them; without this a connect that completes in the
 * moment between the last accept and the close is reset. Turned on where this process may (root), and
 * left on: it changes nothing for sockets outside SO_REUSEPORT groups. Elsewhere the caller says so.
 */
export function ensureRequestMigration(): RequestMigration {
  let value: string;
  try {
    value = readFileSync(sysctl, 'utf8').trim();
  } catch (err) {
    return { unavailable: `${sysctl}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  if (value === '1') return 'on';
  try {
    writeFileSync(sysctl, '1');
    return 'turned-on';
  } catch (err) {
    return {
      unavailable: `${sysctl} is ${value} and cannot be set (${(err as NodeJS.ErrnoException).code})`,
    };
  }
}
