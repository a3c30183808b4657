/** Shared by the api tests: a real read model on an in-memory SQLite store, and an SSE reader. */
import { parseConfig } from '../config/index.ts';
import { Controller, PoolState } from '../control/index.ts';
import type { EbbEvent, ServiceStatus } from '../core/index.ts';
import { SqliteStore } from '../store/index.ts';

/**
 * Where in-process requests go: the default `api.listen`. The API checks `Host` (SPEC §8), so a bare
 * path (`app.request('/v1/pool')`, which Hono sends to `localhost:80`) is refused like a foreign name.
 */
export const apiBase = 'http://127.0.0.1:7070';

export const poolYaml = `
pool: { name: unit, fqdn: unit.ebb.test, minAccepting: 1 }
store: 'sqlite::memory:'
members:
  - id: m1
    address: 127.0.0.1
    services:
      - { id: alpha, listeners: [ { protocol: tcp, port: 7001, upstream: builtin:echo } ] }
      - { id: beta, minAccepting: 2, listeners: [ { protocol: tcp, port: 7002, upstream: builtin:echo } ] }
  - id: m2
    address: 127.0.0.2
    services:
      - { id: alpha, listeners: [ { protocol: tcp, port: 7001, upstream: builtin:echo } ] }
      - { id: beta, minAccepting: 2, listeners: [ { protocol: tcp, port: 7002, upstream: builtin:echo } ] }
`;

/** A pool with no agents: the test writes what agents would (status, liveness, events) into the store. */
export class InMemoryPool {
  readonly store = new SqliteStore(':memory:');
  readonly state = new PoolState(parseConfig(poolYaml), this.store);
  readonly controller = new Controller(this.state, this.store, { ackTimeoutMs: 200 });
  private seq = 0;

  async start(): Promise<this> {
    await this.state.start();
    return this;
  }

  async agentUp(member: string): Promise<void> {
    await this.store.put(this.state.keys.agent(member), JSON.stringify({ at: Date.now() }));
  }

  async status(member: string, service: string, patch: Partial<ServiceStatus>): Promise<void> {
    const status: ServiceStatus = {
      state: 'running',
      accepting: true,
      sessions: 0,
      drained: false,
      forced: 0,
      accepted: 0,
      upstreamFailures: 0,
      refused: 0,
      intentRevision: 0,
      drainStartedAt: null,
      drainedAt: null,
      error: null,
      at: Date.now(),
      ...this.state.status(member, service),
      ...patch,
    };
    await this.store.put(this.state.keys.status(member, service), JSON.stringify(status));
  }

  async event(event: Omit<EbbEvent, 'at'>): Promise<void> {
    const at = Date.now();
    await this.store.put(
      this.state.keys.event(at, event.member, this.seq++),
      JSON.stringify({ at, ...event }),
    );
  }

  async close(): Promise<void> {
    this.state.stop();
    await this.store.close();
  }
}

export interface SseMessage {
  /** The event name; `message` when the block had none; null for a comment. */
  event: string | null;
  data: string;
  /** The block's `id`, when it had one. */
  id?: string;
}

/** Reads server-sent events from a response body, block by block. */
export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private readonly ready: SseMessage[] = [];

  constructor(body: ReadableStream<Uint8Array> | null) {
    if (!body) throw new Error('the response has no body');
    this.reader = body.getReader();
  }

  /** The next message; rejects after `timeoutMs` without one. */
  async next(timeoutMs = 2000): Promise<SseMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.ready.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no server-sent event within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([
        this.reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no server-sent event within ${timeoutMs} ms`)), left);
        }),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) throw new Error('the event stream ended');
      this.buffer += this.decoder.decode(chunk.value, { stream: true });
      this.parse();
    }
    return this.ready.shift()!;
  }

  /** Messages until one matches `stop` (included); fails after `timeoutMs`. */
  async until(stop: (m: SseMessage) => boolean, timeoutMs = 3000): Promise<SseMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const seen: SseMessage[] = [];
    for (;;) {
      const message = await this.next(Math.max(1, deadline - Date.now()));
      seen.push(message);
      if (stop(message)) return seen;
    }
  }

  /** Everything that arrives within `ms`. */
  async collect(ms: number): Promise<SseMessage[]> {
    const deadline = Date.now() + ms;
    const seen: SseMessage[] = [];
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return seen;
      try {
        seen.push(await this.next(left));
      } catch {
        return seen;
      }
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel();
  }

  private parse(): void {
    for (let end = this.buffer.indexOf('\n\n'); end !== -1; end = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event: string | null = 'message';
      const data: string[] = [];
      let comment: string | null = null;
      let id: string | undefined;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comment = line.slice(1).trim();
        else if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('id:')) id = line.slice(3).trim();
      }
      if (comment !== null && data.length === 0) this.ready.push({ event: null, data: comment });
      else this.ready.push({ event, data: data.join('\n'), ...(id === undefined ? {} : { id }) });
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
