import { EventEmitter } from 'node:events';
import { pino, type Logger } from 'pino';
import {
  isEmbeddedListener,
  loadConfigFile,
  validateConfig,
  type PoolConfig,
  type ServiceConfig,
} from '../config/index.ts';
import { EbbError, ExitCode, ServiceState, type EbbEvent, type ServiceStatus } from '../core/index.ts';
import {
  EmbeddedListener,
  type AttachableServer,
  type ListenerStats,
  type WebSocketServerLike,
} from '../listeners/index.ts';
import { MemberAgent, type ServiceRuntime } from '../service/index.ts';
import { openStore, type Store } from '../store/index.ts';

export interface EmbedOptions {
  /** The pool's config: a YAML file's path, or the config as an object (what the YAML would say). */
  config: string | object;
  /** The member this server is (its address is where the agent listens). */
  member: string;
  /** The service this server is; its listeners must be `mode: embedded`. */
  service: string;
  /** A pino logger (or one with the same methods); default: warnings and errors as JSON on stderr. */
  logger?: Logger;
}

/** What `agent.on(…)` can be told; each carries the `EbbEvent` (SPEC §2 events, the store's wording). */
export const EmbeddedAgentEvent = {
  started: 'started',
  paused: 'paused',
  /** Paused (or stopping) and no session left: safe to restart or take down the server. */
  drained: 'drained',
  resumed: 'resumed',
  stopping: 'stopping',
  stopped: 'stopped',
  failed: 'failed',
  /** Sessions ended by Ebb (a deadline, a hard stop). */
  forced: 'forced',
  /** Every event, whatever its kind. */
  event: 'event',
} as const;
export type EmbeddedAgentEvent = (typeof EmbeddedAgentEvent)[keyof typeof EmbeddedAgentEvent];

const eventNames: Record<string, EmbeddedAgentEvent | undefined> = {
  'service.started': 'started',
  'service.paused': 'paused',
  'service.drained': 'drained',
  'service.resumed': 'resumed',
  'service.stopping': 'stopping',
  'service.stopped': 'stopped',
  'service.failed': 'failed',
  'session.forced': 'forced',
};

/**
 * A member's agent for one service, inside the server that is that service (SPEC §12): the same
 * `MemberAgent` as `ebb agent` runs (lease, intents with boot policy and local copy, status, events),
 * with `mode: embedded` listeners that listen for the servers the application attaches. Made by `embed()`.
 */
export class EmbeddedAgent extends EventEmitter {
  readonly member: string;
  readonly service: string;
  readonly #agent: MemberAgent;
  readonly #store: Store;
  readonly #listeners: EmbeddedListener[];
  #closing: Promise<void> | null = null;
  /**
   * Keeps the process alive while it is in the pool: a paused server has no listening socket, and its
   * agent's timers are unref'd, so Node would otherwise exit under it. Cleared by `close()` / `destroy()`.
   */
  #keepAlive: NodeJS.Timeout | null = null;
  #destroying: Promise<number> | null = null;

  /** Use `embed()`: it also starts the agent. */
  constructor(config: PoolConfig, store: Store, options: EmbedOptions, logger: Logger) {
    super();
    this.member = options.member;
    this.service = options.service;
    this.#store = store;
    const member = config.members.find((m) => m.id === options.member);
    if (!member) throw usage(`member ${options.member} is not in the config`);
    const service = member.services.find((s) => s.id === options.service);
    if (!service) throw usage(`member ${member.id} has no service ${options.service}`);
    if (!service.listeners.every(isEmbeddedListener))
      throw usage(`service ${service.id} of ${member.id}: its listeners must say mode: embedded`);
    const listeners: EmbeddedListener[] = [];
    this.#listeners = listeners;
    this.#agent = new MemberAgent({
      config,
      member: member.id,
      store,
      logger,
      view: () => ({ name: config.pool.name, fqdn: config.pool.fqdn, dnsTtl: 0, members: [] }),
      services: [service.id],
      agentCheck: false,
      listeners: (_s: ServiceConfig, l, events) => {
        if (!isEmbeddedListener(l)) throw usage(`service ${service.id}: listener is not embedded`);
        const listener = new EmbeddedListener({
          host: member.address,
          port: l.port,
          protocol: l.protocol,
          closeSpreadMs: l.closeSpreadMs,
          onChange: events.onChange,
          ...(events.onError ? { onError: events.onError } : {}),
        });
        listeners.push(listener);
        return listener;
      },
      onEvent: (event) => this.#told(event),
    });
  }

  /** @internal Called by `embed()`. */
  async start(): Promise<void> {
    this.#keepAlive = setInterval(() => {}, 1 << 30);
    await this.#agent.start();
  }

  /** True while the service takes new sessions: what the application's own health route should answer. */
  get ready(): boolean {
    return this.#runtime().state === ServiceState.running;
  }

  /** `running`, `paused`, `stopping`, `stopped`, … (SPEC §2). */
  get state(): ServiceState {
    return this.#runtime().state;
  }

  /** The service's status as the agent writes it to the store. */
  status(): ServiceStatus {
    return this.#agent.status(this.service)!;
  }

  /** Sessions open now by kind, and the counters (accepted, forced, …), over every attached server. */
  stats(): ListenerStats {
    return this.#runtime().stats();
  }

  /** Where the agent listens for each embedded listener (null while it does not: paused, not attached). */
  addresses(): Array<{ host: string; port: number } | null> {
    return this.#listeners.map((l) => l.address);
  }

  /**
   * Takes a `node:http`, `https`, `http2` or `net` server that has not listened: the agent listens for it
   * on the member's address and the listener's port (the next listener of its protocol not attached yet,
   * or the one on `port`). Resolves once it listens, or at once while the service is paused or stopped.
   */
  attach(server: AttachableServer, options: { port?: number } = {}): Promise<void> {
    const protocol = isHttp(server) ? 'http' : 'tcp';
    const listener = this.#listeners.find(
      (l) =>
        !l.attached &&
        (options.port === undefined ? l.protocol === protocol : l.configuredPort === options.port),
    );
    if (!listener)
      throw usage(
        `service ${this.service} has no free mode embedded ${protocol} listener${options.port ? ` on port ${options.port}` : ''}`,
      );
    return listener.attach(server);
  }

  /** Counts the WebSockets of a `ws` server on an attached HTTP server (`{ server }` or `{ noServer: true }`). */
  attachWebSocketServer(wss: WebSocketServerLike & { options?: { server?: unknown } }): void {
    const server = wss.options?.server;
    const http = this.#listeners.filter(
      (l) => l.http1 && (server === undefined || server === null || l.http1.server === server),
    );
    if (http.length !== 1)
      throw usage(
        http.length === 0
          ? `attach the ws server's HTTP server first (agent.attach(server))`
          : 'several HTTP servers are attached: create the ws server with { server }',
      );
    http[0]!.attachWebSocketServer(wss);
  }

  /**
   * Leaves the pool politely: stops taking sessions (as a pause), waits for the open ones to end, then
   * releases the member. The same promise however often it is called.
   */
  close(): Promise<void> {
    this.#closing ??= this.#finish(() => this.#agent.drainAndStop());
    return this.#closing;
  }

  /** Leaves the pool now: sessions still open are ended (counted as forced). Resolves with how many. */
  destroy(): Promise<number> {
    this.#destroying ??= (async () => {
      const before = this.stats().forced;
      await this.#finish(() => this.#agent.stop());
      return this.stats().forced - before;
    })();
    return this.#destroying;
  }

  async #finish(stop: () => Promise<void>): Promise<void> {
    try {
      await stop();
    } finally {
      await this.#store.close();
      if (this.#keepAlive) clearInterval(this.#keepAlive);
      this.#keepAlive = null;
    }
  }

  #runtime(): ServiceRuntime {
    return this.#agent.runtime(this.service)!;
  }

  #told(event: EbbEvent): void {
    if (event.service !== undefined && event.service !== this.service) return;
    const name = eventNames[event.code];
    if (name) this.emit(name, event);
    this.emit(EmbeddedAgentEvent.event, event);
  }
}

/**
 * Joins the pool as `member`'s agent for `service` (SPEC §12), through the store the config names, exactly
 * as `ebb agent` would: resolves once the service is in the state its intents ask (a server restarted
 * while its service is paused comes back paused). Rejects with a ConfigError naming the field, or
 * EBB_MEMBER_HELD when another live process is that member's agent.
 */
export async function embed(options: EmbedOptions): Promise<EmbeddedAgent> {
  const config =
    typeof options.config === 'string' ? loadConfigFile(options.config) : validateConfig(options.config);
  const logger = options.logger ?? pino({ level: 'warn' }, pino.destination(2));
  const store = await openStore(config.store);
  let agent: EmbeddedAgent;
  try {
    agent = new EmbeddedAgent(config, store, options, logger);
  } catch (err) {
    await store.close();
    throw err;
  }
  try {
    await agent.start();
  } catch (err) {
    await agent.destroy().catch(() => {});
    throw err;
  }
  return agent;
}

function usage(message: string): EbbError {
  return new EbbError('EBB_EMBED_USAGE', message, { exitCode: ExitCode.usage });
}

/** HTTP/1.1 and HTTP/2 servers go to `protocol: http` listeners; plain net servers to `tcp`. */
function isHttp(server: AttachableServer): boolean {
  return 'updateSettings' in server || typeof (server as { setTimeout?: unknown }).setTimeout === 'function';
}
