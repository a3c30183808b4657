import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { ApiServer } from '../api/index.ts';
import { TokenTable } from '../auth/index.ts';
import type { PoolConfig } from '../config/index.ts';
import { Controller, PoolState } from '../control/index.ts';
import { createDnsServer, type PoolDnsServer } from '../dns/index.ts';
import { splitHostPort } from '../config/index.ts';
import { EbbError, ExitCode, ListenError, StoreError } from '../core/index.ts';
import { checkKernelPath } from '../kernel/index.ts';
import { MemberAgent, isEmbeddedService } from '../service/index.ts';
import { openStore, type Store } from '../store/index.ts';

export interface PoolRunnerOptions {
  config: PoolConfig;
  logger: Logger;
  /** Which parts to run; `ebb up` runs them all. */
  agents?: string[] | 'all';
  api?: { listen: string } | false;
  dns?: { listen: string } | false;
}

/**
 * Composes the parts of Ebb for one process: the store, the read model, the agents of some members and
 * the API. `ebb up` runs everything; `ebb agent` and `ebb api` run one part each on a shared store.
 */
export class PoolRunner {
  readonly config: PoolConfig;
  readonly agents: MemberAgent[] = [];
  store!: Store;
  state!: PoolState;
  controller!: Controller;
  api: ApiServer | null = null;
  dns: PoolDnsServer | null = null;
  private readonly options: PoolRunnerOptions;
  private stopping: Promise<void> | null = null;

  constructor(options: PoolRunnerOptions) {
    this.options = options;
    this.config = options.config;
  }

  async start(): Promise<void> {
    // A missing token variable is a config error: find it before anything binds (SPEC §8).
    const tokens = this.options.api === false ? null : TokenTable.fromConfig(this.config);
    const wanted = this.options.agents ?? 'all';
    const candidates = wanted === 'all' ? this.config.members.map((m) => m.id) : wanted;
    // SPEC §12: an agent that cannot run a kernel listener (no CAP_NET_ADMIN, no nft) refuses to start.
    await checkKernelPath(kernelSites(this.config, candidates));
    const newFile = newSqliteFile(this.config.store);
    this.store = await openStore(this.config.store);
    if (newFile) {
      // A typo in `store:` would otherwise start an empty store silently, forgetting every durable pause
      // (operator audit #25). A first start says the same, which is right once.
      this.options.logger.warn(
        { code: 'EBB_NEW_STORE', path: newFile },
        `created a new, empty store at ${newFile}: if this pool ran before, check store: in the config`,
      );
    }
    this.state = new PoolState(this.config, this.store);
    const servesReaders = this.options.api !== false || this.options.dns !== false;
    if (servesReaders) {
      // The API and DNS answer from the store's view; an agent alone has its local copy (SPEC §3).
      await this.state.start().catch(async (err: unknown) => {
        await this.store.close().catch(() => {});
        if (!(err instanceof StoreError)) throw err;
        throw new StoreError(
          `${err.message}: the API and DNS need the store at start (operator audit #40); ` +
            '`ebb agent --member ID` starts from its local copy without it',
          err,
        );
      });
    } else {
      // An agent alone must come up from its local copy even when the store is out of reach (SPEC §3);
      // its pool view (for redirects) follows when the store answers.
      this.state.start().catch((err: unknown) => {
        this.options.logger.warn(
          { err: (err as Error).message },
          'store unreachable; the pool view will follow',
        );
        this.retryStateStart();
      });
    }
    this.controller = new Controller(this.state, this.store);
    try {
      // A member whose services are all embedded has its agent in the server that embeds Ebb (SPEC §12).
      const runsHere = (id: string) =>
        this.config.members.find((m) => m.id === id)?.services.some((s) => !isEmbeddedService(s)) ?? true;
      const members = (wanted === 'all' ? this.config.members.map((m) => m.id) : wanted).filter((id) => {
        if (runsHere(id)) return true;
        if (wanted !== 'all')
          throw new EbbError(
            'EBB_EMBEDDED_MEMBER',
            `member ${id} has only mode embedded services: the server that embeds Ebb is its agent`,
            { exitCode: ExitCode.usage },
          );
        return false;
      });
      for (const member of members) {
        const agent = new MemberAgent({
          config: this.config,
          member,
          store: this.store,
          logger: this.options.logger,
          view: () => this.state.view(),
        });
        this.agents.push(agent);
        await agent.start();
      }
      const dns = this.options.dns ?? { listen: this.config.dns.listen };
      if (dns) {
        const listen = splitHostPort(dns.listen);
        if (!listen)
          throw new EbbError('EBB_BAD_LISTEN', `dns listen address "${dns.listen}" must be host:port`, {
            exitCode: ExitCode.usage,
          });
        this.dns = createDnsServer({
          listen,
          view: () => this.state.view(),
          logger: this.options.logger,
          workers: this.config.dns.workers,
          onViewChange: (changed) => this.state.onChange(() => changed()),
        });
        await this.dns.start().catch((err: unknown) => {
          throw dnsListenError(err, dns.listen);
        });
      }
      const api = this.options.api ?? { listen: this.config.api.listen };
      if (api) {
        this.api = new ApiServer(
          { state: this.state, controller: this.controller, tokens: tokens! },
          api.listen,
        );
        await this.api.start();
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private retryStateStart(): void {
    const timer = setTimeout(() => {
      if (this.stopping) return;
      this.state.start().catch(() => this.retryStateStart());
    }, 1000);
    timer.unref();
  }

  /** Idempotent: the same promise however often it is called. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.api?.close();
      await this.dns?.close();
      await Promise.all(this.agents.map((a) => a.stop()));
      this.state?.stop();
      await this.store?.close();
    })();
    return this.stopping;
  }
}

/**
 * A DNS port that is taken says how to pick another (operator audit #21): on desktops avahi-daemon holds
 * 5353 (mDNS) with SO_REUSEADDR, so a pool DNS there fails to bind whatever the config says.
 */
function dnsListenError(err: unknown, listen: string): unknown {
  if (!(err instanceof ListenError) || err.errno !== 'EADDRINUSE') return err;
  const mdns = /:5353$/.test(listen) ? '; 5353 is mDNS (avahi-daemon)' : '';
  return new EbbError(
    err.code,
    `${err.message}${mdns}: set dns.listen in the config to a free port (e.g. 127.0.0.1:5300), or run \`ebb dns --listen HOST:PORT\``,
    { exitCode: err.exitCode, cause: err, ...(err.details ? { details: err.details } : {}) },
  );
}

/** The listeners with `mode: kernel` of the members this process runs. */
function kernelSites(config: PoolConfig, members: readonly string[]) {
  return config.members
    .filter((m) => members.includes(m.id))
    .flatMap((m) =>
      m.services.flatMap((s) =>
        s.listeners
          .filter((l) => l.protocol === 'tcp' && l.mode === 'kernel')
          .map((l) => ({ member: m.id, service: s.id, address: m.address, port: l.port })),
      ),
    );
}

/** The absolute path of a `sqlite:` store's file when it does not exist yet (opening it will create it). */
function newSqliteFile(spec: string): string | null {
  if (!spec.startsWith('sqlite:')) return null;
  const path = spec.slice('sqlite:'.length);
  if (path === ':memory:') return null;
  return existsSync(path) ? null : resolve(path);
}
