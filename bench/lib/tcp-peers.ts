/**
 * What the tcp benchmarks run beside Ebb: the upstream every target proxies to (a plain Node echo server
 * in its own process, `echo-server.ts`), and Debian's HAProxy as the peer of a tcp listener (SPEC §9) —
 * through the harness's HAProxy starter: TCP mode, one thread (Ebb is one Node thread), long idle
 * timeouts so idle sessions stay.
 */
import { join } from 'node:path';
import { Haproxy } from '../../test/harness/haproxy.ts';
import { ebbNodeFlags } from '../../test/harness/ebb-process.ts';
import type { ManagedProcess } from '../../test/harness/managed-process.ts';
import { freePort } from '../../test/harness/ports.ts';
import { childFdLimit, startNodeScript, track } from './processes.ts';

export interface Endpoint {
  host: string;
  port: number;
}

/** Starts the echo upstream on 127.0.0.1 and waits until it listens (ended at cleanup). */
export async function startEchoUpstream(): Promise<Endpoint & { proc: ManagedProcess }> {
  const port = await freePort();
  const script = join(import.meta.dirname, 'echo-server.ts');
  const proc = startNodeScript('echo upstream', script, ['--host', '127.0.0.1', '--port', String(port)]);
  await proc.waitForOutput(/listening \d+/);
  return { host: '127.0.0.1', port, proc };
}

/**
 * The floor of a Node proxy (bench/lib/tcp-floor-proxy.ts) on a free 127.0.0.1 port in front of `upstream`,
 * with the V8 flags `ebb` runs with: the floor of what Ebb could be, tuned as Ebb is.
 */
export async function startNodeFloorProxy(upstream: Endpoint): Promise<Endpoint & { proc: ManagedProcess }> {
  const port = await freePort();
  const script = join(import.meta.dirname, 'tcp-floor-proxy.ts');
  const proc = startNodeScript(
    'node floor proxy',
    script,
    ['--port', String(port), '--upstream-port', String(upstream.port)],
    { nodeArgs: ebbNodeFlags },
  );
  await proc.waitForOutput(/listening \d+/);
  return { host: '127.0.0.1', port, proc };
}

/** HAProxy on a free 127.0.0.1 port proxying to `upstream`; `maxconn`: at least the sessions held at once. */
export async function startHaproxyPeer(
  dir: string,
  upstream: Endpoint,
  maxconn: number,
  threads = 1,
): Promise<Endpoint & { haproxy: Haproxy }> {
  const port = await freePort();
  const haproxy = await Haproxy.start(
    dir,
    { host: '127.0.0.1', port },
    [{ name: 'upstream', address: upstream.host, port: upstream.port }],
    { maxconn, connectTimeout: '5s', idleTimeout: '10m', fdLimit: childFdLimit(), threads },
  );
  return { host: '127.0.0.1', port, haproxy: track(haproxy) };
}
