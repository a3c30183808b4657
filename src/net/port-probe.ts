import { createSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';

/**
 * Every socket of Ebb sets SO_REUSEPORT, so that a new process can bind beside the one it replaces
 * (SPEC §13). Linux lets sockets of one user share a port when all of them set it: two Ebb processes
 * configured by mistake on one port would then split its connections silently. So before binding, a
 * probe binds the port *without* SO_REUSEPORT and lets it go again: it fails with EADDRINUSE exactly when
 * someone holds the port — and that is an error unless this process is replacing the holder.
 */
let besidePredecessor = false;

/** While true, a held port is the predecessor's, to bind beside: the probe is skipped. */
export function bindBesidePredecessor(on: boolean): void {
  besidePredecessor = on;
}

/**
 * Rejects with the bind error (EADDRINUSE) when the port is held; resolves when it is free, when this
 * process binds beside its predecessor, or for port 0 (the kernel picks a free one).
 */
export async function probePortFree(host: string, port: number, kind: 'tcp' | 'udp'): Promise<void> {
  if (besidePredecessor || port === 0) return;
  if (kind === 'tcp') {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true, backlog: 1 }, () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return;
  }
  const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind({ address: host, port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}
