import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { ApiServer } from '../api/index.ts';
import { TokenTable } from '../auth/index.ts';
import type { PoolConfig } from '../config/index.ts';
import { Controller, PoolState } from '../control/index.ts';
import { createDnsServer, type PoolDnsServer } from '../dns/index.ts';
import { splitHostPort } from '../config/index.ts';
import { EbbError, EventCode, ExitCode, ListenError, StoreError } from '../core/index.ts';
import {
  HandoffServer,
  Predecessor,
  PredecessorGroup,
  PredecessorListener,
  handoffSocketPath,
  type HandingOver,
} from '../handoff/index.ts';
import { checkKernelPath } from '../kernel/index.ts';
import { bindBesidePredecessor, ensureRequestMigration } from '../net/index.ts';
import type { ListenerEvents } from '../listeners/index.ts';
import { MemberAgent, isEmbeddedService } from '../service/index.ts';
import { openStore, type Store } from '../store/index.ts';

export interface PoolRunnerOptions {
  config: PoolConfig;
  logger: Logger;
  /** Which parts to run; `ebb up` runs them all. */
  agents?: string[] | 'all';
  api?: { listen: string } | false;
  dns?: { listen: string } | false;
  /**
   * What this process runs, naming its hand-off control socket (SPEC §13): a process started with the
   * same scope on this machine replaces this one. The server commands give one (`up`, `agent m1`, …);
   * without it (runners composed in one process: tests, tools) there is no hand-off either way.
   */
  handoffScope?: string;
  /** How long a predecessor may keep serving its sessions once this process took over (default 1 h). */
  handoffTimeoutMs?: number;
}

/** What became of a hand-off this process made to its successor. */
export interface HandedOver {
  successorPid: number;
  /** Sessions that ended by themselves after the successor took over, and those ended at the deadline. */
  ended: number;
  forced: number;
}

const defaultHandoffTimeoutMs = 3_600_000;

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
  /** The process this one replaced, while it still serves sessions (null when none). */
  predecessor: Predecessor | null = null;
  /** Every process this one took over from that still serves sessions (it, and any that re-attached). */
  readonly predecessors = new PredecessorGroup();
  private handoff: HandoffServer | null = null;
  private handoffPath: string | null = null;
  private readonly options: PoolRunnerOptions;
  private stopping: Promise<void> | null = null;
  private apiHandedOff: Promise<void> = Promise.resolve();
  /** Told once a successor has taken over (`yielded`) and once this process has nothing left (`done`). */
  private readonly handOverWatchers: {
    yielded: Array<(pid: number, sessions: number) => void>;
    done: Array<(result: HandedOver) => void>;
  } = { yielded: [], done: [] };

  constructor(options: PoolRunnerOptions) {
    this.options = options;
    this.config = options.config;
  }

  /** A successor took this process's place: it no longer accepts and serves `sessions` until they end. */
  onYielded(told: (successorPid: number, sessions: number) => void): void {
    this.handOverWatchers.yielded.push(told);
  }

  /** The hand-off to a successor is over: every session here has ended; the process may exit. */
  onHandedOver(told: (result: HandedOver) => void): void {
    this.handOverWatchers.done.push(told);
  }

  async start(): Promise<void> {
    // A missing token variable is a config error: find it before anything binds (SPEC §8).
    const tokens = this.options.api === false ? null : TokenTable.fromConfig(this.config);
    const wanted = this.options.agents ?? 'all';
    const candidates = wanted === 'all' ? this.config.members.map((m) => m.id) : wanted;
    // SPEC §12: an agent that cannot run a kernel listener (no CAP_NET_ADMIN, no nft) refuses to start.
    await checkKernelPath(kernelSites(this.config, candidates));
    const scope = this.options.handoffScope;
    const handoffPath =
      scope === undefined
        ? null
        : handoffSocketPath(this.config.agent.localState, this.config.pool.name, scope);
    // A process running the same parts here is replaced, not fought (SPEC §13): from its hello on it
    // confirms nothing, so a pause given meanwhile waits for this process to apply it.
    this.predecessor = handoffPath ? await Predecessor.find(handoffPath, this.options.logger) : null;
    this.handoffPath = handoffPath;
    // Its ports are held by it until it yields: this process binds beside, not elsewhere.
    bindBesidePredecessor(this.predecessor !== null);
    try {
      await this.startParts(wanted, tokens);
      if (this.predecessor) await this.takeOver(this.predecessor);
      bindBesidePredecessor(false);
      if (handoffPath) this.handoff = await this.listenForSuccessor(handoffPath);
    } catch (err) {
      // Before the predecessor yielded, it carries on as if nothing happened.
      this.predecessor?.abandon();
      bindBesidePredecessor(false);
      await this.stop();
      throw err;
    }
  }

  private async startParts(wanted: string[] | 'all', tokens: TokenTable | null): Promise<void> {
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
      const predecessor = this.predecessor;
      const predecessors = this.predecessors;
      for (const member of members) {
        const continues = predecessor?.members.includes(member) === true;
        const agent = new MemberAgent({
          config: this.config,
          member,
          store: this.store,
          logger: this.options.logger,
          view: () => this.state.view(),
          // A note of one of its listeners may concern a call a predecessor still carries.
          onNote: (service, listener, note) => predecessors.note({ member, service, listener, note }),
          ...(continues && predecessor ? { takeOverFrom: predecessor.pid } : {}),
          // With a control socket, predecessors may come (the replaced one, or one re-attaching later).
          ...(this.handoffPath !== null
            ? {
                extraListeners: (service: string, events: ListenerEvents) => [
                  new PredecessorListener(predecessors, member, service, events),
                ],
              }
            : {}),
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

  /**
   * The successor's side, once every part of this process is bound beside the predecessor's: tells it
   * to stop accepting, then takes each member over (key, intents, status with both processes' sessions).
   */
  private async takeOver(predecessor: Predecessor): Promise<void> {
    const timeoutMs = this.options.handoffTimeoutMs ?? defaultHandoffTimeoutMs;
    await predecessor.yield(timeoutMs);
    this.predecessors.add(predecessor);
    const fromPid = predecessor.pid;
    const continuing = this.agents.filter((a) => predecessor.members.includes(a.member.id));
    await Promise.all(continuing.map((a) => a.takeOver()));
    announceHandoff(continuing, (agent) => ({
      phase: 'took-over',
      fromPid,
      sessions: agent.services.reduce((n, s) => n + predecessor.stats(agent.member.id, s.id).sessions, 0),
    }));
    this.options.logger.info(
      { fromPid, sessions: predecessor.sessions },
      'took over from the running process; it serves its live sessions until they end',
    );
    this.announceFinish(predecessor, continuing);
  }

  /** `agent.handoff phase=finished` for each member once `predecessor` is gone, with its counts. */
  private announceFinish(predecessor: Predecessor, continuing: MemberAgent[]): void {
    const fromPid = predecessor.pid;
    void predecessor.finished.then((result) => {
      announceHandoff(continuing, () => ({
        phase: 'finished',
        fromPid,
        ended: result?.ended ?? null,
        forced: result?.forced ?? null,
        ...(result ? {} : { note: 'the old process went away without a word' }),
      }));
      if (this.predecessor === predecessor) this.predecessor = null;
    });
  }

  /** The predecessor's side: what a successor that connects to the control socket may ask of this one. */
  private listenForSuccessor(path: string): Promise<HandoffServer> {
    const parts: HandingOver = {
      members: this.agents.map((a) => a.member.id),
      holdConfirmations: () => this.agents.forEach((a) => a.holdConfirmations(true)),
      resumeConfirmations: () => this.agents.forEach((a) => a.holdConfirmations(false)),
      stopAccepting: async (deadlineMs) => {
        this.migrateQueuedConnects();
        await Promise.all(this.agents.map((a) => a.handOver()));
        // The API answers what is under way (a pause waiting for its confirmation) while it goes.
        this.apiHandedOff = this.api?.handOff(deadlineMs) ?? Promise.resolve();
        await this.dns?.close();
      },
      services: () =>
        this.agents.flatMap((a) =>
          a.services.map((s) => ({ member: a.member.id, service: s.id, stats: a.runtime(s.id)!.stats() })),
        ),
      onChange: (changed) => this.agents.forEach((a) => a.watch(changed)),
      endSessions: async (member, service) =>
        (await this.agents
          .find((a) => a.member.id === member)
          ?.runtime(service)
          ?.endSessions()) ?? 0,
      applyNote: ({ member, service, listener, note }) => {
        this.agents.find((a) => a.member.id === member)?.applyNote(service, listener, note);
        // Its own predecessors (hand-offs still under way before this one) may hold that call.
        this.predecessors.note({ member, service, listener, note });
      },
      ownSessions: () =>
        this.agents.reduce((n, a) => n + a.services.reduce((m, s) => m + a.runtime(s.id)!.sessions, 0), 0) -
        this.predecessors.sessions,
      endAll: async () => {
        const counts = await Promise.all(
          this.agents.flatMap((a) => a.services.map((s) => a.runtime(s.id)!.endSessions())),
        );
        return counts.reduce((x, y) => x + y, 0);
      },
    };
    let successorPid = 0;
    return HandoffServer.listen(
      path,
      parts,
      {
        yielded: (pid, sessions) => {
          successorPid = pid;
          for (const told of this.handOverWatchers.yielded) told(pid, sessions);
        },
        finished: (result) => {
          void this.apiHandedOff.then(() => {
            for (const told of this.handOverWatchers.done) told({ successorPid, ...result });
          });
        },
        adopted: (channel, pid, members) => {
          const adopted = Predecessor.adopted(channel, pid, members);
          this.predecessors.add(adopted);
          const continuing = this.agents.filter((a) => members.includes(a.member.id));
          announceHandoff(continuing, () => ({
            phase: 're-attached',
            fromPid: pid,
            sessions: adopted.sessions,
          }));
          this.announceFinish(adopted, continuing);
        },
      },
      this.options.logger,
    );
  }

  /** Before closing listeners beside a successor's: their queued connects must go to it, not be reset. */
  private migrateQueuedConnects(): void {
    const migration = ensureRequestMigration();
    const { logger } = this.options;
    if (migration === 'turned-on') {
      logger.info(
        { code: 'EBB_TCP_MIGRATE_REQ' },
        'set net.ipv4.tcp_migrate_req=1: connects queued on the listeners this process closes go to its successor',
      );
    } else if (migration !== 'on') {
      logger.warn(
        { code: 'EBB_TCP_MIGRATE_REQ', err: migration.unavailable },
        'a connect that completes the moment this process closes a listener may be reset; set net.ipv4.tcp_migrate_req=1 (docs/deploy.md)',
      );
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
      this.handoff?.close();
      this.predecessors.release();
      await this.api?.close();
      await this.dns?.close();
      await Promise.all(this.agents.map((a) => a.stop()));
      this.state?.stop();
      await this.store?.close();
    })();
    return this.stopping;
  }
}

/** One `agent.handoff` event per member of `agents` (SPEC §13): `phase fromPid toPid …`, toPid this process. */
function announceHandoff(
  agents: MemberAgent[],
  data: (agent: MemberAgent) => { phase: string; fromPid: number } & Record<string, unknown>,
): void {
  for (const agent of agents) {
    const { phase, fromPid, ...facts } = data(agent);
    agent.publish({
      code: EventCode.agentHandoff,
      member: agent.member.id,
      at: Date.now(),
      data: { phase, fromPid, toPid: process.pid, ...facts },
    });
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
