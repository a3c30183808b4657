/**
 * The floor of a TCP proxy written on Node's `net` (bench/memory-per-session.ts): a client socket and an
 * upstream socket per session, bytes forwarded both ways with backpressure and half-closes, as Ebb's tcp
 * listener does — and nothing else: no session table, no counts, no lifecycle.
 *
 *   node bench/lib/tcp-floor-proxy.ts --port P --upstream-port U
 */
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'upstream-port': { type: 'string' } },
});
const upstreamPort = Number(values['upstream-port']);

function forward(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => to.end());
}

const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true, noDelay: true });
  forward(client, upstream);
  forward(upstream, client);
  client.on('error', () => client.destroy());
  upstream.on('error', () => upstream.destroy());
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => client.destroy());
});
server.listen({ host: '127.0.0.1', port: Number(values.port), backlog: 4096 }, () => {
  process.stdout.write(`listening ${Number(values.port)}\n`);
});
