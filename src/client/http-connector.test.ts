import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpConnector, HttpRequestError } from './http-connector.ts';
import { NoMemberAcceptedError } from './pool-connector.ts';
import type { Endpoint } from './pool-resolver.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; endpoint: Endpoint }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, endpoint: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } };
}

async function closedEndpoint(): Promise<Endpoint> {
  const { server, endpoint } = await serve(() => {});
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return endpoint;
}

describe('http client connector', () => {
  const servers: Server[] = [];
  let ok: Endpoint;
  let unavailable: Endpoint;
  let silent: Endpoint;
  let resetting: Endpoint;
  let missing: Endpoint;
  let seenBySilent = 0;
  const connector = new HttpConnector({ timeoutMs: 300, responseTimeoutMs: 300 });

  before(async () => {
    const start = async (handler: Handler) => {
      const { server, endpoint } = await serve(handler);
      servers.push(server);
      return endpoint;
    };
    ok = await start((req, res) => {
      req.resume();
      res.end(`ok ${req.method}`);
    });
    unavailable = await start((_req, res) => {
      res.writeHead(503, { 'retry-after': '5' });
      res.end('paused');
    });
    silent = await start(() => void seenBySilent++);
    resetting = await start((req) => req.socket.destroy());
    missing = await start((_req, res) => {
      res.writeHead(404);
      res.end();
    });
  });
  after(async () => {
    await connector.destroy();
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('moves past a refused connection and a 503 to the member that answers, in the order given', async () => {
    const answer = await connector.request([await closedEndpoint(), unavailable, ok], { path: '/' });
    assert.equal(answer.statusCode, 200);
    assert.equal(await answer.body.text(), 'ok GET');
    assert.deepEqual(answer.endpoint, ok);
    assert.deepEqual(
      answer.attempts.map((a) => [a.outcome, a.detail]),
      [
        ['refused', 'ECONNREFUSED'],
        ['protocol-refusal', 'HTTP 503'],
        ['connected', 'HTTP 200'],
      ],
    );
  });

  it('moves on when a member does not answer in time or breaks the connection (idempotent request)', async () => {
    const answer = await connector.request([silent, resetting, ok], { path: '/x' });
    assert.equal(answer.statusCode, 200);
    await answer.body.dump();
    assert.deepEqual(
      answer.attempts.map((a) => a.outcome),
      ['timeout', 'reset', 'connected'],
    );
  });

  it('does not send a POST again once a member may have taken it; a refused connect it does', async () => {
    const before = seenBySilent;
    await assert.rejects(
      connector.request([silent, ok], { path: '/', method: 'POST', body: 'x' }),
      (err: unknown) => err instanceof HttpRequestError && err.code === 'EBB_HTTP_REQUEST_FAILED',
    );
    assert.equal(seenBySilent, before + 1);
    const answer = await connector.request([await closedEndpoint(), ok], {
      path: '/',
      method: 'POST',
      body: 'x',
    });
    assert.equal(await answer.body.text(), 'ok POST');
  });

  it('any answer but 503 is the answer', async () => {
    const answer = await connector.request([missing, ok], { path: '/' });
    assert.equal(answer.statusCode, 404);
    await answer.body.dump();
    assert.equal(answer.attempts.length, 1);
  });

  it('reports every attempt when no member takes the request', async () => {
    await assert.rejects(
      connector.request([await closedEndpoint(), unavailable], { path: '/' }),
      (err: unknown) =>
        err instanceof NoMemberAcceptedError &&
        err.attempts.map((a) => a.outcome).join() === 'refused,protocol-refusal',
    );
    await assert.rejects(connector.request([], { path: '/' }), NoMemberAcceptedError);
  });
});
