/**
 * A small TCP helper run inside a network namespace (the test process cannot enter one): plain echo
 * servers and clients that hold connections, driven by one JSON request per line on stdin and answering
 * one JSON line per request on stdout (`{"id":…}`). Start it with `SocketHelper.start()`.
 *
 * Requests: serve {host, port} · open {group, host, port, count} · echo {group} (a round trip on each
 * open connection of the group: how many answered) · close {group, count} (ends that many, waits for
 * their close) · try {host, port} (a new connection: `connected` or the error code) · count {group}.
 */
import { createServer, connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { ManagedProcess } from './managed-process.ts';

interface Request {
  id: number;
  op: 'serve' | 'open' | 'echo' | 'close' | 'try' | 'count';
  host?: string;
  port?: number;
  group?: string;
  count?: number;
}

const groups = new Map<string, Set<Socket>>();
const group = (name = '') => {
  let set = groups.get(name);
  if (!set) groups.set(name, (set = new Set()));
  return set;
};

function dial(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }));
    }, 3000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function roundTrip(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const text = `ping-${Math.random()}\n`;
    let got = '';
    const timer = setTimeout(() => done(false), 3000);
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes(text)) done(true);
    };
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(ok);
    };
    socket.on('data', onData);
    if (socket.destroyed) return done(false);
    socket.write(text);
  });
}

async function handle(r: Request): Promise<Record<string, unknown>> {
  switch (r.op) {
    case 'serve': {
      const server = createServer((s) => {
        s.on('error', () => s.destroy());
        s.pipe(s);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(r.port, r.host, () => resolve());
      });
      return {};
    }
    case 'open': {
      const set = group(r.group);
      for (let i = 0; i < (r.count ?? 1); i++) {
        const socket = await dial(r.host!, r.port!);
        set.add(socket);
        socket.once('close', () => set.delete(socket));
      }
      return { open: set.size };
    }
    case 'echo': {
      const answers = await Promise.all([...group(r.group)].map(roundTrip));
      return { answered: answers.filter(Boolean).length, open: group(r.group).size };
    }
    case 'close': {
      const victims = [...group(r.group)].slice(0, r.count ?? Infinity);
      await Promise.all(
        victims.map((s) => new Promise<void>((resolve) => (s.once('close', () => resolve()), s.end()))),
      );
      return { open: group(r.group).size };
    }
    case 'try': {
      try {
        (await dial(r.host!, r.port!)).destroy();
        return { result: 'connected' };
      } catch (err) {
        return { result: (err as NodeJS.ErrnoException).code ?? 'error' };
      }
    }
    case 'count':
      return { open: group(r.group).size };
  }
}

if (import.meta.main) {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const r = JSON.parse(line) as Request;
    handle(r).then(
      (answer) => process.stdout.write(`${JSON.stringify({ id: r.id, ...answer })}\n`),
      (err: unknown) => process.stdout.write(`${JSON.stringify({ id: r.id, error: String(err) })}\n`),
    );
  });
  lines.on('close', () => process.exit(0));
  process.stdout.write('socket-helper ready\n');
}

/** The test's side: sends requests to a helper process and waits for each answer. */
export class SocketHelper {
  readonly proc: ManagedProcess;
  #next = 1;
  constructor(proc: ManagedProcess) {
    this.proc = proc;
  }

  static async start(proc: ManagedProcess): Promise<SocketHelper> {
    await proc.waitForOutput(/socket-helper ready/);
    return new SocketHelper(proc);
  }

  async request(request: Omit<Request, 'id'>): Promise<Record<string, unknown>> {
    const id = this.#next++;
    this.proc.send(JSON.stringify({ id, ...request }));
    const match = await this.proc.waitForOutput(new RegExp(`^\\{"id":${id}[,}].*$`, 'm'), 20_000);
    const answer = JSON.parse(match[0]) as Record<string, unknown>;
    if (answer.error) throw new Error(`socket helper: ${String(answer.error)}`);
    return answer;
  }
}
