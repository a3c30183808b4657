import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, request, Agent, type IncomingMessage } from 'node:http';
import { connect as h2connect, constants as h2, createServer as createH2Server } from 'node:http2';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { EmbeddedListener, type EmbeddedListenerOptions } from './embedded-listener.ts';

const host = '127.0.0.1';

/** A port free now (listen on 0, close): so the listener can listen there again after a resume. */
async function freePort(): Promise<number> {
  const probe = createNetServer();
  probe.listen(0, host);
  await once(probe, 'listening');
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A listener whose stats changes can be waited for (no sleeps: the listener says when it changed). */
async function embedded(protocol: 'http' | 'tcp', extra: Partial<EmbeddedListenerOptions> = {}) {
  const waiters = new Set<() => void>();
  const listener = new EmbeddedListener({
    host,
    port: await freePort(),
    protocol,
    closeSpreadMs: 200,
    closeGraceMs: 500,
    onChange: () => {
      for (const wake of [...waiters]) wake();
    },
    ...extra,
  });
  // Woken by each change, and every 10 ms for the gauges that change without one (idle connections).
  const until = (check: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      if (check()) return resolve();
      const timer = setInterval(() => wake(), 10);
      const wake = () => {
        if (!check()) return;
        clearInterval(timer);
        waiters.delete(wake);
        resolve();
      };
      waiters.add(wake);
    });
  return { listener, until };
}

function refusedConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = netConnect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

function get(port: number, agent: Agent, path = '/'): Promise<{ res: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.once('end', () => resolve({ res, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

describe('embedded listener: node:http (SPEC §10 drain semantics)', () => {
  it('counts requests in flight; a pause refuses new connections, answers with Connection: close and closes idle keep-alive connections', async () => {
    const { listener, until } = await embedded('http');
    let release: (() => void) | null = null;
    const server = createHttpServer((req, res) => {
      if (req.url === '/slow') release = () => res.end('slow');
      else res.end('ok');
    });
    await listener.attach(server);
    await listener.open(false);
    cleanups.push(
      () => listener.destroy(),
      () => server.close(),
    );
    const port = listener.address!.port;
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    cleanups.push(() => agent.destroy());

    const first = await get(port, agent);
    assert.equal(first.body, 'ok');
    assert.equal(first.res.headers.connection, 'keep-alive');
    await until(() => listener.stats().idleConnections === 1);

    // One request in flight on a second connection: a session; the idle connection is not one.
    const slow = get(port, agent, '/slow');
    await until(() => listener.stats().sessions === 1 && release !== null);
    assert.deepEqual(listener.stats().byKind, { requests: 1, websockets: 0 });

    await listener.refuse();
    assert.equal(await refusedConnect(port), 'ECONNREFUSED');
    await until(() => listener.stats().idleConnections === 0); // the idle kept-alive one closed at once
    release!();
    const answered = await slow;
    assert.equal(answered.body, 'slow');
    assert.equal(answered.res.headers.connection, 'close');
    await until(() => listener.stats().sessions === 0);

    await listener.accept();
    assert.equal((await get(port, agent)).body, 'ok');
    assert.equal(listener.stats().accepted, 3);
    assert.equal(listener.stats().forced, 0);
  });

  it('WebSockets of a ws server go on through a pause; the deadline closes them with 1012, counted as forced', async () => {
    const { listener, until } = await embedded('http');
    const server = createHttpServer((_req, res) => res.end('ok'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
    await listener.attach(server);
    listener.attachWebSocketServer(wss);
    await listener.open(false);
    cleanups.push(
      () => listener.destroy(),
      () => wss.close(),
      () => server.close(),
    );
    const port = listener.address!.port;

    const clients = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const ws = new WebSocket(`ws://${host}:${port}/`);
        await once(ws, 'open');
        return ws;
      }),
    );
    await until(() => listener.stats().byKind.websockets === 3);
    await listener.refuse();
    assert.equal(await refusedConnect(port), 'ECONNREFUSED');
    for (const ws of clients) {
      ws.send('still here');
      const [data] = (await once(ws, 'message')) as [Buffer];
      assert.equal(data.toString(), 'still here');
    }
    const codes = clients.map((ws) => once(ws, 'close').then(([code]) => code as number));
    assert.equal(await listener.endSessions(), 3);
    assert.deepEqual(await Promise.all(codes), [1012, 1012, 1012]);
    await until(() => listener.stats().sessions === 0);
    assert.equal(listener.stats().forced, 3);
  });

  it('a server attached while paused never accepts until the service resumes; listen() of its own is refused', async () => {
    const { listener } = await embedded('http');
    await listener.open(true);
    const server = createHttpServer((_req, res) => res.end('ok'));
    await listener.attach(server);
    cleanups.push(
      () => listener.destroy(),
      () => server.close(),
    );
    assert.equal(listener.address, null);
    assert.throws(() => server.listen(0), { code: 'EBB_EMBEDDED_LISTEN' });
    await listener.accept();
    const agent = new Agent();
    cleanups.push(() => agent.destroy());
    assert.equal((await get(listener.address!.port, agent)).body, 'ok');
    assert.throws(() => listener.attach(createHttpServer()), { code: 'EBB_ALREADY_ATTACHED' });
  });
});

describe('embedded listener: node:http2', () => {
  it('a pause sends the two-step GOAWAY; the open stream finishes; the connection then closes', async () => {
    const { listener, until } = await embedded('http');
    let release: (() => void) | null = null;
    const server = createH2Server();
    server.on('stream', (stream, headers) => {
      if (headers[':path'] === '/slow') release = () => stream.end('slow');
      else {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }
      if (headers[':path'] === '/slow') stream.respond({ ':status': 200 });
    });
    await listener.attach(server);
    await listener.open(false);
    cleanups.push(
      () => listener.destroy(),
      () => server.close(),
    );
    const port = listener.address!.port;
    const client = h2connect(`http://${host}:${port}`);
    cleanups.push(() => client.destroy());
    const goaways: number[] = [];
    client.on('goaway', (code: number) => goaways.push(code));
    const slow = client.request({ ':path': '/slow' });
    slow.setEncoding('utf8');
    let body = '';
    slow.on('data', (chunk: string) => (body += chunk));
    await until(() => listener.stats().sessions === 1 && release !== null);
    assert.deepEqual(listener.stats().byKind, { requests: 1 });

    await listener.refuse();
    assert.equal(await refusedConnect(port), 'ECONNREFUSED');
    await once(client, 'goaway');
    assert.equal(goaways[0], h2.NGHTTP2_NO_ERROR);
    release!();
    await once(slow, 'end');
    assert.equal(body, 'slow');
    await once(client, 'close');
    await until(() => listener.stats().sessions === 0);
    assert.equal(listener.stats().forced, 0);
  });
});

describe('embedded listener: node:net', () => {
  it('connections are sessions; they survive a pause; the deadline ends them, each forced', async () => {
    const { listener, until } = await embedded('tcp');
    const server = createNetServer((socket) => socket.pipe(socket));
    await listener.attach(server);
    await listener.open(false);
    cleanups.push(() => listener.destroy());
    const port = listener.address!.port;
    const sockets: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = netConnect(port, host);
      await once(socket, 'connect');
      sockets.push(socket);
    }
    await until(() => listener.stats().byKind.connections === 2);
    await listener.refuse();
    assert.equal(await refusedConnect(port), 'ECONNREFUSED');
    sockets[0]!.write('echo');
    const [data] = (await once(sockets[0]!, 'data')) as [Buffer];
    assert.equal(data.toString(), 'echo');
    for (const s of sockets) s.on('end', () => s.end());
    assert.equal(await listener.endSessions(), 2);
    await until(() => listener.stats().sessions === 0);
    assert.equal(listener.stats().forced, 2);
    const listening = createNetServer().listen(0, host);
    await once(listening, 'listening');
    cleanups.push(() => listening.close());
    assert.throws(
      () => new EmbeddedListener({ host, port: 1, protocol: 'tcp', closeSpreadMs: 0 }).attach(listening),
      { code: 'EBB_ALREADY_LISTENING' },
    );
  });

  it('a server of the wrong protocol is refused', async () => {
    const { listener } = await embedded('tcp');
    assert.throws(() => listener.attach(createHttpServer()), { code: 'EBB_NOT_ATTACHABLE' });
  });
});

/** A self-signed certificate for 127.0.0.1, made by openssl for this run. */
function selfSigned(): { cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-embedded-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('embedded listener: node:https', () => {
  it('counts requests over TLS; a pause answers the request in flight with Connection: close', async () => {
    const tls = selfSigned();
    const { listener, until } = await embedded('http');
    let release: (() => void) | null = null;
    const server = createHttpsServer(tls, (req, res) => {
      if (req.url === '/slow') release = () => res.end('slow');
      else res.end('ok');
    });
    await listener.attach(server);
    await listener.open(false);
    cleanups.push(
      () => listener.destroy(),
      () => server.close(),
    );
    const port = listener.address!.port;
    const answer = new Promise<{ connection: string | undefined; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host, port, path: '/slow', ca: tls.cert }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.once('end', () => resolve({ connection: res.headers.connection, body }));
      });
      req.once('error', reject);
      req.end();
    });
    await until(() => listener.stats().byKind.requests === 1 && release !== null);
    await listener.refuse();
    assert.equal(await refusedConnect(port), 'ECONNREFUSED');
    release!();
    assert.deepEqual(await answer, { connection: 'close', body: 'slow' });
    await until(() => listener.stats().sessions === 0);
    assert.equal(listener.stats().accepted, 1);
  });
});
