import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { NoMemberAcceptedError } from './pool-connector.ts';
import type { Endpoint } from './pool-resolver.ts';
import { openWebSocketFirstAccepting, tryAgainLater } from './websocket-connector.ts';

/** A WebSocket server that does `onOpen` with each socket; `/deny` answers the upgrade with `deny`. */
async function wsServer(
  onOpen: (ws: WebSocket) => void,
  deny?: number,
): Promise<{ server: Server; endpoint: Endpoint }> {
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer();
  server.on('upgrade', (req, socket, head) => {
    if (deny) {
      socket.end(`HTTP/1.1 ${deny} No\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      onOpen(ws);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, endpoint: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } };
}

async function closedEndpoint(): Promise<Endpoint> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { host: '127.0.0.1', port };
}

describe('WebSocket client connector', () => {
  const servers: Array<Server | TcpServer> = [];
  let echo: Endpoint;
  let busy: Endpoint;
  let denied: Endpoint;
  let silent: Endpoint;

  before(async () => {
    const start = async (onOpen: (ws: WebSocket) => void, deny?: number) => {
      const { server, endpoint } = await wsServer(onOpen, deny);
      servers.push(server);
      return endpoint;
    };
    echo = await start((ws) => ws.on('message', (data) => ws.send(String(data))));
    busy = await start((ws) => ws.close(tryAgainLater, 'try again later'));
    denied = await start(() => {}, 503);
    const tcp = createTcpServer((socket) => socket.on('error', () => {})); // takes the connect, never upgrades
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', () => resolve()));
    servers.push(tcp);
    silent = { host: '127.0.0.1', port: (tcp.address() as AddressInfo).port };
  });
  after(async () => {
    for (const server of servers) {
      if ('closeAllConnections' in server) server.closeAllConnections();
      server.close();
    }
  });

  it('moves past a refused connection, a refused upgrade and a close 1013 to the member that takes it', async () => {
    const result = await openWebSocketFirstAccepting([await closedEndpoint(), denied, busy, echo], {
      path: '/ws',
    });
    assert.deepEqual(result.endpoint, echo);
    assert.deepEqual(
      result.attempts.map((a) => [a.outcome, a.detail]),
      [
        ['refused', 'ECONNREFUSED'],
        ['protocol-refusal', 'upgrade answered 503'],
        ['protocol-refusal', 'close 1013'],
        ['connected', undefined],
      ],
    );
    const reply = new Promise<string>((resolve) => result.socket.once('message', (d) => resolve(String(d))));
    result.socket.send('hello');
    assert.equal(await reply, 'hello');
    result.socket.close(1000);
  });

  it('a 1013 before the first exchange moves on when the application checks it', async () => {
    const hello = (socket: WebSocket) =>
      new Promise<boolean>((resolve, reject) => {
        socket.once('message', () => resolve(true));
        socket.once('close', () => reject(new Error('closed')));
        socket.send('hi');
      });
    const result = await openWebSocketFirstAccepting([busy, echo], { path: '/ws', accepts: hello });
    assert.deepEqual(
      result.attempts.map((a) => a.detail ?? a.outcome),
      ['close 1013', 'connected'],
    );
    result.socket.close(1000);
  });

  it('moves on when the upgrade is not answered in time', async () => {
    const result = await openWebSocketFirstAccepting([silent, echo], { path: '/ws', timeoutMs: 300 });
    assert.deepEqual(
      result.attempts.map((a) => a.outcome),
      ['timeout', 'connected'],
    );
    result.socket.close(1000);
  });

  it('reports every attempt when no member takes the session', async () => {
    await assert.rejects(
      openWebSocketFirstAccepting([denied, busy], { path: '/ws' }),
      (err: unknown) => err instanceof NoMemberAcceptedError && err.attempts.length === 2,
    );
  });
});
