import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { chatPage } from './builtin-web-page.ts';
import { ChatRoom } from './chat-room.ts';

/** Longest wait `/delay` grants, and the most bytes `/bytes` sends. */
const maxDelayMs = 60_000;
const maxBytes = 1024 ** 3;
const chunkBytes = 64 * 1024;

/**
 * `upstream: builtin:web` (SPEC §10): a small web app on a loopback port the OS picks, so a demo pool
 * needs no web server installed. The listener proxies to it like to any upstream.
 *
 * - `GET /`: the chat page; `GET /healthz`: `{"status":"ok","member":…}`
 * - WebSocket `/ws`: echo; WebSocket `/ws/chat?name=…`: the member's broadcast chat room
 * - `GET /headers`: the request's headers as JSON (what the proxy forwarded)
 * - `POST /echo`: the body streamed back; `GET /bytes?n=N`: N bytes, streamed; `GET /delay?ms=N`
 */
export class BuiltinWeb {
  readonly #member: string;
  readonly #host: string;
  readonly #room: ChatRoom;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();

  /** `near` is the listener's address: an IPv6 listener gets an IPv6 loopback app. */
  constructor(member: string, near: string) {
    this.#member = member;
    this.#host = isIPv6(near) ? '::1' : '127.0.0.1';
    this.#room = new ChatRoom(member);
  }

  get address(): { host: string; port: number } | undefined {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    return address ? { host: this.#host, port: address.port } : undefined;
  }

  /** People in the chat room now. */
  get chatters(): number {
    return this.#room.size;
  }

  async start(): Promise<{ host: string; port: number }> {
    if (!this.#server) {
      const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => this.#route(req, res));
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
        this.#upgrade(req, socket, head),
      );
      server.on('connection', (socket: Socket) => {
        this.#sockets.add(socket);
        socket.once('close', () => this.#sockets.delete(socket));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.#host, port: 0 }, () => resolve());
      });
      this.#server = server;
    }
    return this.address!;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    for (const ws of this.#wss.clients) ws.terminate();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://builtin');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const json = (value: unknown) => send(200, 'application/json', `${JSON.stringify(value)}\n`);
    switch (url.pathname) {
      case '/':
        return send(200, 'text/html; charset=utf-8', chatPage(this.#member));
      case '/favicon.ico':
        res.writeHead(204);
        return void res.end();
      case '/healthz':
        return json({ status: 'ok', member: this.#member });
      case '/headers':
        return json({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders });
      case '/echo':
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
        req.pipe(res);
        return;
      case '/bytes':
        return streamBytes(res, clamp(Number(url.searchParams.get('n') ?? 0), maxBytes));
      case '/delay': {
        const ms = clamp(Number(url.searchParams.get('ms') ?? 0), maxDelayMs);
        const timer = setTimeout(() => json({ delayed: ms, member: this.#member }), ms);
        res.once('close', () => clearTimeout(timer));
        return;
      }
      default:
        return send(404, 'text/plain; charset=utf-8', 'not found\n');
    }
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://builtin');
    socket.on('error', () => socket.destroy());
    if (url.pathname !== '/ws' && url.pathname !== '/ws/chat') {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('error', () => ws.terminate());
      if (url.pathname === '/ws') {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        return;
      }
      const name = (url.searchParams.get('name') ?? 'guest').slice(0, 40) || 'guest';
      this.#room.join(ws, name);
    });
  }
}

function clamp(n: number, max: number): number {
  return Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), max) : 0;
}

/** Writes `n` bytes with backpressure, never holding more than one chunk. */
function streamBytes(res: ServerResponse, n: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  const chunk = Buffer.alloc(Math.min(chunkBytes, Math.max(n, 1)), 'e');
  let left = n;
  const pump = (): void => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}
