/**
 * The upstream every TCP target proxies to: a plain Node echo server in its own process, one thread.
 *
 *   node bench/lib/echo-server.ts --host 127.0.0.1 --port 0     (prints "listening <port>")
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } },
});

const server = createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.on('error', (err) => {
  process.stderr.write(`echo-server: ${err.message}\n`);
});
server.listen({ host: values.host, port: Number(values.port), backlog: 4096 }, () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening ${port}\n`);
});

const stop = (): void => {
  server.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
