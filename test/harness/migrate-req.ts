import { readFileSync, writeFileSync } from 'node:fs';

const migrateReq = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * A handing-over Ebb turns net.ipv4.tcp_migrate_req on (src/net/migrate-requests.ts); a test that makes
 * hand-offs leaves the machine as it found it: call before, run the returned function after.
 */
export function keepTcpMigrateReq(): () => void {
  let before: string | null;
  try {
    before = readFileSync(migrateReq, 'utf8');
  } catch {
    before = null;
  }
  return () => {
    if (before === null) return;
    try {
      writeFileSync(migrateReq, before);
    } catch {
      // not ours to change here either
    }
  };
}
