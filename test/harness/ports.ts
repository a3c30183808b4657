import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';

/** A TCP port that is free on `host` right now (the kernel's choice: port 0). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host);
  return port!;
}

/**
 * `count` distinct TCP ports free on `host` right now: every listener stays open until all ports are
 * known, so none repeats.
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port for a TCP listener');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/**
 * A run of `count` consecutive ports that are free for TCP and UDP on every address. Chosen below the
 * kernel's ephemeral range (32768+) so outgoing connections of other tests cannot take them meanwhile.
 */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * (22_000 - count));
    let free = true;
    for (let port = base; port < base + count && free; port++)
      free = (await tcpFree(port)) && (await udpFree(port));
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ port, address: '0.0.0.0', exclusive: true }, () => socket.close(() => resolve(true)));
  });
}
