/** Debian's HAProxy as the peer of a tcp listener (SPEC §9): TCP mode, one thread, like Ebb's one Node thread. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcess, childFdLimit, waitForTcp, which } from './processes.ts';

export interface HaproxyOptions {
  dir: string;
  listen: { host: string; port: number };
  upstream: { host: string; port: number };
  /** At least the number of sessions the benchmark holds at once. */
  maxconn: number;
  /** Client and server inactivity timeouts: long, so idle sessions stay. */
  idleTimeout?: string;
}

export function haproxyAvailable(): boolean {
  return which('haproxy');
}

export function haproxyConfig(o: HaproxyOptions): string {
  const idle = o.idleTimeout ?? '10m';
  return [
    'global',
    '  nbthread 1',
    `  maxconn ${o.maxconn}`,
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    `  timeout client ${idle}`,
    `  timeout server ${idle}`,
    'frontend bench',
    `  bind ${o.listen.host}:${o.listen.port}`,
    `  maxconn ${o.maxconn}`,
    '  default_backend upstream',
    'backend upstream',
    `  server echo ${o.upstream.host}:${o.upstream.port}`,
    '',
  ].join('\n');
}

/** Starts `haproxy -db -f <cfg>` (foreground, one process) and waits until it accepts. */
export async function startHaproxy(o: HaproxyOptions): Promise<BenchProcess> {
  // HAProxy raises its own fd limit to about 2 × maxconn; it cannot go past the hard limit.
  const fdRoom = Math.floor((childFdLimit() - 100) / 2);
  if (o.maxconn > fdRoom)
    throw new Error(`haproxy maxconn ${o.maxconn} needs more than the fd limit allows (${fdRoom})`);
  const cfg = join(o.dir, `haproxy-${o.listen.port}.cfg`);
  writeFileSync(cfg, haproxyConfig(o));
  const proc = new BenchProcess('haproxy', 'haproxy', ['-db', '-f', cfg]);
  try {
    await waitForTcp(o.listen.host, o.listen.port);
  } catch (err) {
    await proc.stop();
    throw new Error(`${(err as Error).message}\nhaproxy said:\n${proc.output}`, { cause: err });
  }
  return proc;
}
