/** Small clients for the http listener tests: WebSockets (Node's own), raw HTTP/1.1 on a socket. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { WebSocketServer } from 'ws';

/** Opens a WebSocket with Node's global client; rejects if it does not open within `timeoutMs`. */
export function openWebSocket(url: string, timeoutMs = 3000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    // Messages are queued from the start: one that arrives before the test asks for it is kept, not lost
    // (an EventTarget keeps nothing for listeners added later).
    queued(ws);
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`${url}: not open within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`${url}: WebSocket failed`));
    };
  });
}

/** The next text message (queued ones first). */
export function nextMessage(ws: WebSocket, timeoutMs = 3000): Promise<string> {
  const queue = queued(ws);
  if (queue.messages.length > 0) return Promise.resolve(queue.messages.shift()!);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
    queue.waiters.push((m) => {
      clearTimeout(timer);
      resolve(m);
    });
  });
}

interface Queue {
  messages: string[];
  waiters: Array<(m: string) => void>;
}
const queues = new WeakMap<WebSocket, Queue>();

function queued(ws: WebSocket): Queue {
  let q = queues.get(ws);
  if (!q) {
    const queue: Queue = { messages: [], waiters: [] };
    q = queue;
    queues.set(ws, queue);
    ws.addEventListener('message', (e: MessageEvent) => {
      const text = typeof e.data === 'string' ? e.data : String(e.data);
      const waiter = queue.waiters.shift();
      if (waiter) waiter(text);
      else queue.messages.push(text);
    });
  }
  return q;
}

/** Resolves with the close event's code and reason. */
export function closed(ws: WebSocket, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    ws.addEventListener('close', (e: CloseEvent) => {
      clearTimeout(timer);
      resolve({ code: e.code, reason: e.reason });
    });
  });
}

/** A raw TCP connection that collects everything it receives, for keep-alive and hostile-input tests. */
export class RawClient {
  readonly socket: Socket;
  received = '';
  ended = false;
  closed: Promise<void>;
  readonly #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.received += d.toString('latin1');
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('end', () => {
      this.ended = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.closed.then(() => {
      this.ended = true;
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static connect(host: string, port: number, timeoutMs = 2000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('connect timeout'));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RawClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Waits until `received` satisfies `test` (or the peer closed); resolves with `received`. */
  async waitFor(test: (received: string) => boolean, timeoutMs = 3000, what = 'data'): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!test(this.received)) {
      if (this.ended)
        throw new Error(`closed before ${what}; got ${JSON.stringify(this.received.slice(0, 500))}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.received.slice(0, 500))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received;
  }

  /** Waits for `count` complete responses (heads with Content-Length bodies), returns their heads. */
  async responses(count: number, timeoutMs = 3000): Promise<string[]> {
    await this.waitFor((r) => parseResponses(r).length >= count, timeoutMs, `${count} responses`);
    return parseResponses(this.received).map((r) => r.head);
  }

  /** Whether the server closed the connection within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    return Promise.race([this.closed.then(() => true), timer]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Splits a byte stream of HTTP/1.1 responses delimited by Content-Length (enough for these tests). */
export function parseResponses(text: string): Array<{ head: string; body: string }> {
  const out: Array<{ head: string; body: string }> = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const head = text.slice(at, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const size = length ? Number(length[1]) : 0;
    if (text.length < end + 4 + size) return out;
    out.push({ head, body: text.slice(end + 4, end + 4 + size) });
    at = end + 4 + size;
  }
}

/** What the test upstream saw. */
export interface UpstreamLog {
  /** Requests whose head arrived, in order: method, url, headers. */
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[] }>;
  /** Requests whose body arrived complete. */
  completed: number;
  /** Requests whose body broke off (the proxy aborted them). */
  aborted: number;
  /**
   * Malformed requests the upstream's own parser saw: must stay 0 (nothing malformed is forwarded). A
   * request the proxy aborted mid-body (its client went away or sent garbage) is not one of them.
   */
  clientErrors: number;
  /** Requests cut short (reset, or EOF inside a body): the proxy aborting them. */
  truncated: number;
  /** Close codes the upstream's WebSockets got from the proxy. */
  wsCloseCodes: number[];
  wsOpen: number;
}

/**
 * A web server to proxy to, whose routes show what the proxy did: `/headers` (what arrived), `/hop`
 * (answers with hop-by-hop fields), `/slow-body` (a body in two parts, 300 ms apart), `/upload` (reads
 * the body, answers its size and when its first byte came), `/delay?ms=`, `/hang` (never answers),
 * WebSocket `/ws` (echo; records close codes), upgrade `/deny-upgrade` (403), CONNECT (echo tunnel).
 */
export async function startUpstream(): Promise<{
  port: number;
  log: UpstreamLog;
  close: () => Promise<void>;
}> {
  const log: UpstreamLog = {
    requests: [],
    completed: 0,
    aborted: 0,
    clientErrors: 0,
    truncated: 0,
    wsCloseCodes: [],
    wsOpen: 0,
  };
  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    log.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    const url = new URL(req.url ?? '/', 'http://upstream');
    let firstByteAt = 0;
    let size = 0;
    req.on('data', (d: Buffer) => {
      if (size === 0) firstByteAt = Date.now();
      size += d.length;
    });
    req.on('end', () => log.completed++);
    req.on('aborted', () => log.aborted++);
    req.on('error', () => {});
    const json = (value: unknown, extra: Record<string, string> = {}) => {
      const body = JSON.stringify(value);
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...extra,
      });
      res.end(body);
    };
    switch (url.pathname) {
      case '/headers':
        return void req.once('end', () =>
          json({ headers: req.headers, rawHeaders: req.rawHeaders, url: req.url }),
        );
      case '/hop':
        return void req.once('end', () =>
          json(
            { ok: true },
            {
              connection: 'x-secret',
              'x-secret': '1',
              'keep-alive': 'timeout=1',
              'proxy-connection': 'keep-alive',
            },
          ),
        );
      case '/slow-body':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        setTimeout(() => res.end('second'), 300);
        return;
      case '/upload':
        return void req.once('end', () => json({ size, firstByteAt, endAt: Date.now() }));
      case '/delay': {
        const timer = setTimeout(() => json({ delayed: true }), Number(url.searchParams.get('ms') ?? 0));
        res.once('close', () => clearTimeout(timer));
        return;
      }
      case '/hang':
        return;
      default:
        res.writeHead(404, { 'content-length': 0 });
        res.end();
    }
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE') log.truncated++;
    else log.clientErrors++;
    socket.destroy();
  });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    log.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    if (req.url === '/deny-upgrade') {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nconnection: close\r\n\r\ndenied',
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      log.wsOpen++;
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      ws.on('close', (code) => {
        log.wsOpen--;
        log.wsCloseCodes.push(code);
      });
      ws.on('error', () => {});
    });
  });
  server.on('connect', (req: IncomingMessage, socket, head) => {
    log.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    socket.write('HTTP/1.1 200 Connection Established\r\nx-tunnel: yes\r\n\r\n');
    if (head.length) socket.write(head);
    socket.pipe(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    log,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `test` every 10 ms until it holds; throws with `what` after `timeoutMs`. */
export async function eventually(test: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Runs a command without blocking the event loop (the listener under test is in this process). */
export async function run(
  file: string,
  args: string[],
  timeoutMs = 10_000,
): Promise<{ stdout: string; stderr: string; code: number }> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });
}

/** PEM files of a test CA and server certificates it signed, made with `openssl` at test time. */
export interface TestCertificates {
  dir: string;
  ca: string;
  /** Server certificates for localhost / 127.0.0.1, by name: `{ cert, key }` paths. */
  servers: Record<string, { cert: string; key: string }>;
}

/**
 * Makes a throwaway CA and one server certificate per name in `dir` (nothing secret is committed):
 * EC P-256, valid two days, SAN `DNS:localhost, IP:127.0.0.1` and any `dnsNames` (e.g. `*.<fqdn>` for a
 * pool's member names), the name as CN so tests can tell them apart.
 */
export async function makeCertificates(
  dir: string,
  names: string[],
  dnsNames: string[] = [],
): Promise<TestCertificates> {
  const { execFileSync } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Ebb Test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  writeFileSync(
    join(dir, 'server.ext'),
    `subjectAltName=${['DNS:localhost', 'IP:127.0.0.1', ...dnsNames.map((n) => `DNS:${n}`)].join(',')}\n` +
      'extendedKeyUsage=serverAuth\n',
  );
  const servers: TestCertificates['servers'] = {};
  for (const name of names) {
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      'server.ext',
    );
    servers[name] = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  }
  return { dir, ca: join(dir, 'ca.pem'), servers };
}
