import type { TcpKernelListenerConfig } from '../config/index.ts';
import { KernelRuleError, type EbbError } from '../core/index.ts';
import {
  memberChain,
  parseSockets,
  SocketEvents,
  systemCommands,
  type KernelCommands,
  type MemberChain,
} from '../kernel/index.ts';
import { formatAddress } from '../net/index.ts';
import { LifecycleListener } from './lifecycle-listener.ts';
import type { ListenerBuild } from './listener-kinds.ts';
import { ListenerLifecycle } from './listener-lifecycle.ts';
import type { ListenerStats } from './listener-stats.ts';
import { ListenerState, type Listener } from './listener.ts';

/** How long after a pause the drain is read at the fastest pace. */
const freshDrainMs = 300;
/** How long after a pause the destroy notifications are subscribed. */
const watcherDelayMs = 100;

export interface KernelListenerOptions {
  pool: string;
  member: string;
  service: string;
  host: string;
  port: number;
  /** Default: `nft` and `ss` from the PATH. */
  commands?: KernelCommands;
  /** Default: this process's chain of `pool`/`member`, shared with the member's other kernel listeners. */
  chain?: MemberChain;
  onChange?: (urgent: boolean) => void;
  onError?: (err: EbbError) => void;
  /**
   * How often the socket table is read while sessions drain (refusing or closing): drain detection.
   * Default: every 15 ms for the first 300 ms after the pause, then every 100 ms while sock_diag
   * destroy notifications wake a reading at each close (40 ms without them).
   */
  drainPollMs?: number;
  /** How often otherwise (the counts in status). */
  idlePollMs?: number;
  /** Default true: while draining, also read at each sock_diag destroy notification (`ss -E`). */
  watchEvents?: boolean;
}

/**
 * `mode: kernel` (SPEC §12): nothing of Ebb's sits in the data path. The real server listens on the
 * member's address and port itself; refusing is an nftables rule that resets new connections (TCP SYN
 * without ACK), and the sessions are the connections the kernel's socket table holds for that address
 * and port. The rule is there whenever the listener does not accept (refusing, closing, closed): a
 * paused or stopped service keeps refusing even while no agent runs, and `detach()` (the agent going
 * away) leaves the kernel as it is.
 */
export class KernelListener extends LifecycleListener {
  readonly description: string;
  protected readonly life: ListenerLifecycle;
  readonly #o: KernelListenerOptions;
  readonly #commands: KernelCommands;
  readonly #chain: MemberChain;
  readonly #key: string;
  readonly #onChainChange = (urgent: boolean) => this.#o.onChange?.(urgent);
  /** Peers (`address:port`) of the connections seen at the last reading. */
  #peers = new Set<string>();
  #accepted = 0;
  #forced = 0;
  /** Whether new connections are refused (the rule is wanted): drives the poll's pace. */
  #refusing = true;
  /** When it last began refusing (`performance.now()`). */
  #refusedAt = 0;
  #polling = false;
  #timer: NodeJS.Timeout | null = null;
  #reading: Promise<void> | null = null;
  #readNext: Promise<void> | null = null;
  #detached = false;
  /** While a drain is under way: destroy notifications, so the last close is read at once. */
  readonly #events = new SocketEvents();

  constructor(options: KernelListenerOptions) {
    super();
    this.#o = options;
    this.#commands = options.commands ?? systemCommands;
    this.#chain = options.chain ?? memberChain(options.pool, options.member, this.#commands);
    this.description = `tcp ${formatAddress(options.host, options.port)} (mode kernel)`;
    this.#key = this.#chain.add(
      { service: options.service, address: options.host, port: options.port },
      this.#onChainChange,
    );
    this.life = new ListenerLifecycle(this.description, {
      bind: (refusing) => this.#bind(refusing),
      refuse: () => this.#want(true),
      accept: () => this.#want(false),
      stopListening: () => this.#want(true),
      endSessions: () => this.#destroySessions(),
      release: async () => this.#stopPolling(),
      sessions: () => this.#peers.size,
    });
  }

  /** A rule that disagrees with what this listener asks (see `MemberChain.fault`), or null. */
  get fault(): string | null {
    const fault = this.#chain.fault;
    return fault === null ? null : `${this.description}: ${fault}`;
  }

  /** Whether the kernel holds this listener's refusal rule now. */
  get ruleInKernel(): boolean {
    return this.#chain.refusing(this.#key);
  }

  stats(): ListenerStats {
    const connections = this.#peers.size;
    return {
      sessions: connections,
      byKind: { connections },
      accepted: this.#accepted,
      refused: this.#chain.refused(this.#key),
      forced: this.#forced,
      upstreamFailures: 0,
      acceptErrors: 0,
      idleConnections: 0,
    };
  }

  /** Closed means stopped: new connections are refused (at boot, a stopped service gets its rule here). */
  override async close(): Promise<void> {
    if (this.state === ListenerState.closed && !this.#detached) await this.#want(true);
    return super.close();
  }

  /**
   * The agent goes away: the reading stops and the rule stays as the kernel has it (a paused service
   * goes on refusing, a running one has no rule); the connections, which are the server's, are left alone.
   */
  async detach(): Promise<void> {
    this.#detached = true;
    this.#stopPolling();
    this.#chain.remove(this.#key, this.#onChainChange);
    await this.#reading?.catch(() => {});
  }

  async #bind(refusing: boolean): Promise<void> {
    await this.#want(refusing);
    // Before the listener counts as open: a paused service restarted shows its sessions at once.
    await this.#read();
    this.#polling = true;
    this.#schedule();
  }

  /** Sets the rule and resolves once the kernel has it: `pause` returns only after that (SPEC §2). */
  async #want(refusing: boolean): Promise<void> {
    if (refusing && !this.#refusing) this.#refusedAt = performance.now();
    this.#refusing = refusing;
    await this.#chain.set(this.#key, refusing ? 'refuse' : 'accept');
    // Counted afresh once nothing new gets in: a connection opened since the last (slow) reading must
    // not let the drain look complete at once. With sessions known, no drain is declared now, so the
    // pause need not wait for that reading.
    if (refusing && this.#polling) {
      const reading = this.#read().catch(() => {});
      if (this.#peers.size === 0) await reading;
    }
    this.#schedule();
  }

  /** SOCK_DESTROY (`ss -K`): each connection destroyed is forced; the peer gets a reset. */
  async #destroySessions(): Promise<number> {
    const out = await this.#commands.destroySockets(this.#o.host, this.#o.port);
    const ended = parseSockets(out).length;
    this.#forced += ended;
    await this.#read();
    if (this.#peers.size > 0 && ended === 0) {
      throw new KernelRuleError(
        `${this.description}: ss -K destroyed none of ${this.#peers.size} connections ` +
          '(a kernel without CONFIG_INET_DIAG_DESTROY?)',
      );
    }
    return ended;
  }

  #stopPolling(): void {
    this.#events.stop();
    this.#polling = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The next reading: soon while sessions drain, at the slow pace otherwise. */
  #schedule(): void {
    if (!this.#polling || this.#detached) return;
    if (this.#timer) clearTimeout(this.#timer);
    const draining = this.#refusing && this.#peers.size > 0;
    if (draining && this.#o.watchEvents !== false) {
      // Once the pause has been confirmed (its status written): starting a process from Ebb's heap holds
      // the event loop for a while, and the fast readings cover the first few hundred ms anyway.
      if (!this.#events.running) {
        setTimeout(() => {
          if (this.#polling && this.#refusing && this.#peers.size > 0) {
            this.#events.start(this.#o.host, this.#o.port, () => void this.#read().catch(() => {}));
          }
        }, watcherDelayMs).unref();
      }
    } else {
      this.#events.stop();
    }
    // While draining: fast just after the pause (the notifications may not be subscribed yet), then
    // slower while they are (they wake a reading at each close), at `drainPollMs` without them.
    const fresh = performance.now() - this.#refusedAt < freshDrainMs;
    const drainMs = this.#o.drainPollMs ?? (fresh ? 15 : this.#events.running ? 100 : 40);
    const ms = draining ? drainMs : (this.#o.idlePollMs ?? 1000);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#read()
        .catch(() => {})
        .finally(() => this.#schedule());
    }, ms);
    this.#timer.unref();
  }

  /** Reads the socket table: one reading at a time; asked during one, a reading that begins after it. */
  #read(): Promise<void> {
    if (!this.#reading) {
      this.#reading = this.#readNow().finally(() => (this.#reading = null));
      return this.#reading;
    }
    this.#readNext ??= this.#reading
      .catch(() => {})
      .then(() => {
        this.#readNext = null;
        return this.#read();
      });
    return this.#readNext;
  }

  async #readNow(): Promise<void> {
    let peers: string[];
    try {
      peers = parseSockets(await this.#commands.sockets(this.#o.host, this.#o.port));
    } catch (err) {
      const e = err instanceof KernelRuleError ? err : new KernelRuleError(String(err), err);
      this.#o.onError?.(e);
      throw e;
    }
    const now = new Set(peers);
    let changed = now.size !== this.#peers.size;
    for (const peer of now) {
      if (!this.#peers.has(peer)) {
        this.#accepted++;
        changed = true;
      }
    }
    this.#peers = now;
    if (!changed) return;
    this.life.sessionsChanged();
    this.#o.onChange?.(false);
  }
}

/** `tcp` with `mode: kernel` in a pool config. */
export function createKernelListener(
  address: string,
  config: TcpKernelListenerConfig,
  build: ListenerBuild,
): Listener {
  return new KernelListener({
    pool: build.pool ?? build.view().name,
    member: build.member,
    service: build.service.id,
    host: address,
    port: config.port,
    ...build.events,
  });
}
