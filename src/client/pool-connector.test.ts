import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connectToFirstAccepting, NoMemberAcceptedError } from './pool-connector.ts';

function listen(
  onConnection: Parameters<typeof createServer>[1] = () => {},
): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.on('error', () => {}); // the client may reset: not what these tests look at
      onConnection?.(socket);
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

async function closedPort(): Promise<number> {
  const { server, port } = await listen();
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('client connector', () => {
  let accepting: { server: Server; port: number };
  let refusingByProtocol: { server: Server; port: number };

  before(async () => {
    accepting = await listen((socket) => socket.end('OK\n'));
    refusingByProtocol = await listen((socket) => socket.end('503\n'));
  });
  after(() => {
    accepting.server.close();
    refusingByProtocol.server.close();
  });

  it('moves past a refused member to the next one, in the order given', async () => {
    const refused = await closedPort();
    const result = await connectToFirstAccepting([
      { host: '127.0.0.1', port: refused },
      { host: '127.0.0.1', port: accepting.port },
    ]);
    assert.equal(result.endpoint.port, accepting.port);
    assert.deepEqual(
      result.attempts.map((a) => a.outcome),
      ['refused', 'connected'],
    );
    result.socket.destroy();
  });

  it('moves on when the protocol says go elsewhere', async () => {
    const firstLine = (socket: import('node:net').Socket) =>
      new Promise<boolean>((resolve) =>
        socket.once('data', (d: Buffer) => resolve(!d.toString().startsWith('503'))),
      );
    const result = await connectToFirstAccepting(
      [
        { host: '127.0.0.1', port: refusingByProtocol.port },
        { host: '127.0.0.1', port: accepting.port },
      ],
      { accepts: firstLine },
    );
    assert.equal(result.endpoint.port, accepting.port);
    assert.deepEqual(
      result.attempts.map((a) => a.outcome),
      ['protocol-refusal', 'connected'],
    );
    result.socket.destroy();
  });

  it('reports every attempt when no member accepts', async () => {
    const a = await closedPort();
    const b = await closedPort();
    await assert.rejects(
      connectToFirstAccepting([
        { host: '127.0.0.1', port: a },
        { host: '127.0.0.1', port: b },
      ]),
      (err: unknown) =>
        err instanceof NoMemberAcceptedError &&
        err.attempts.length === 2 &&
        err.code === 'EBB_NO_MEMBER_ACCEPTED',
    );
    await assert.rejects(connectToFirstAccepting([]), NoMemberAcceptedError);
  });
});
