import type { SipListenerConfig } from '../config/index.ts';
import { LifecycleListener } from './lifecycle-listener.ts';
import type { ConnectionOptions } from 'node:tls';
import { EbbError } from '../core/index.ts';
import { ReloadingSecureContext, type TlsCredentials, type TlsFiles } from '../tls/index.ts';
import { ErrorThrottle, formatAddress } from '../net/index.ts';
import {
  SipProxyCore,
  type SipProxyStats,
  type SipSessionSink,
  type SipTransportName,
} from '../sip/index.ts';
import type { ListenerBuild } from './listener-kinds.ts';
import { ListenerLifecycle } from './listener-lifecycle.ts';
import type { ListenerStats } from './listener-stats.ts';
import type { Listener, ListenerNote } from './listener.ts';
import { SipBuiltinUas } from './sip-builtin-uas.ts';
import { SipFlowDrainer } from './sip-flow-drainer.ts';
import { acceptingMember } from './sip-redirect.ts';
import type { SipTransport, SipTransportEvents, SipTransportOptions } from './sip-transport.ts';
import { SipTcpTransport } from './sip-tcp-transport.ts';
import { OWN_FIRST_CONNECTION_ID, SipSharedPortTransport } from './sip-shared-port-transport.ts';
import { SipUdpTransport } from './sip-udp-transport.ts';
import { SipWsTransport } from './sip-ws-transport.ts';

/**
 * How long a dialog may go without any request before it is taken as gone (a lost BYE must not keep a
 * drain from finishing). Calls with session timers (RFC 4028) refresh well within it. The service config
 * field `sipMaxIdle` overrides it.
 */
export const SIP_DEFAULT_MAX_IDLE_MS = 2 * 3_600_000;
export const SIP_DEFAULT_RETRY_AFTER_S = 30;

export interface SipListenerOptions {
  host: string;
  port: number;
  transport: SipTransportName;
  /** The SIP server fronted, or the built-in demo callee. */
  upstream: { host: string; port: number } | 'builtin';
  /** See `ListenerEvents`. */
  onChange?: (urgent: boolean) => void;
  /** Also told of unexpected errors while handling a message (a bug: the message is dropped). */
  onError?: (err: unknown) => void;
  /** Seconds in Retry-After of the 503 sent while refusing. */
  retryAfter?: number;
  /** `reroute: redirect`: an accepting member to send new sessions to with a 302 while refusing. */
  redirect?: () => { host: string } | undefined;
  maxIdleMs?: number;
  /** How long ending sessions waits for the answers to its BYEs. */
  endWaitMs?: number;
  /** While refusing, idle client flows are closed over this long, in random order (SPEC §14). */
  closeSpreadMs?: number;
  /** Flows count as sessions (kind `flows`): a drain, and `readyForOffline`, wait for them too. */
  drainFlows?: boolean;
  /** `transport: tls`: the certificate and key (SPEC §11), re-read on change or SIGHUP. */
  tls?: TlsFiles;
  /** `transport: tls`: how connections to the upstream are made (default: verified against Node's CAs). */
  tlsDial?: ConnectionOptions;
  onTlsReload?: (credentials: TlsCredentials) => void;
  /**
   * Shares its port (SO_REUSEPORT) with front ends of the same config beside it — worker threads, or a
   * process handing over (SPEC §13). udp and tcp proxies then also listen on a port of their own, named
   * in their Via and Record-Route (`SipSharedPortTransport`), tell the others of requests inside dialogs
   * they do not track (`onNote`), and on `close()` give the shared port up while their dialogs go on.
   */
  reusePort?: boolean;
  /**
   * udp and tcp proxies take the shape `reusePort` gives (a port of their own in Via and Record-Route,
   * notes, `close()` giving the shared port up) on one thread too, so that a process replacing this one
   * can bind beside it (SPEC §13). The shared port is still probed first: a port someone else holds is
   * an error (src/net/port-probe.ts).
   */
  sharePort?: boolean;
  /** See `ListenerEvents.onNote`. */
  onNote?: (note: ListenerNote) => void;
}

export const SIP_DEFAULT_CLOSE_SPREAD_MS = 10_000;

/**
 * A SIP front end (SPEC §4.2): a record-routing proxy in front of one SIP server, over UDP or TCP, whose
 * sessions are dialogs. Refusing keeps the socket open — new calls, subscriptions and registrations get
 * 503 (or 302), OPTIONS to the front end gets 503 so load balancers take it out, and everything inside
 * existing dialogs goes on flowing. Closing does the same until the last dialog ends: its BYE has to
 * reach us (RFC 3261 §16.12, we record-routed), so the socket closes only then — except with
 * `reusePort`, where others beside it take the shared port's traffic: closing gives that port up at once
 * and keeps its own port and connections until the last dialog ends.
 */
export class SipListener extends LifecycleListener {
  readonly description: string;
  readonly #o: SipListenerOptions;
  protected readonly life: ListenerLifecycle;
  #transport: SipTransport | null = null;
  #core: SipProxyCore | null = null;
  #uas: SipBuiltinUas | null = null;
  #tls: ReloadingSecureContext | null = null;
  readonly #drainer: SipFlowDrainer;
  // The dialog tracker counts the sessions open now (read through the core); these are the totals.
  #accepted = 0;
  #refused = 0;
  #forced = 0;
  #upstreamFailures = 0;
  #pastAcceptErrors = 0;
  readonly #sink: SipSessionSink = {
    opened: () => {
      this.#accepted++;
      this.#changed();
    },
    closed: (forced) => {
      if (forced) this.#forced++;
      this.#changed();
    },
    upstreamFailed: () => {
      this.#upstreamFailures++;
      this.#changed();
    },
    refused: () => {
      this.#refused++;
      this.#changed();
    },
  };

  constructor(options: SipListenerOptions) {
    super();
    this.#o = options;
    const up =
      options.upstream === 'builtin'
        ? 'builtin:sip-uas'
        : formatAddress(options.upstream.host, options.upstream.port);
    this.description = `sip/${options.transport} ${formatAddress(options.host, options.port)} → ${up}`;
    this.life = new ListenerLifecycle(this.description, {
      bind: (refusing) => this.#bind(refusing),
      refuse: async () => this.#setRefusing(true),
      accept: async () => this.#setRefusing(false),
      stopListening: () => this.#stopListening(),
      endSessions: () => this.#core?.endSessions() ?? Promise.resolve(0),
      release: () => this.#release(),
      sessions: () => this.#sessions(),
    });
    this.#drainer = new SipFlowDrainer({
      spreadMs: options.closeSpreadMs ?? SIP_DEFAULT_CLOSE_SPREAD_MS,
      flows: {
        ids: () => this.#transport?.flowIds?.() ?? [],
        busy: () => this.#core?.busyConnections() ?? new Set(),
        close: (id) => this.#transport?.closeFlow?.(id),
      },
    });
  }

  /** Dialogs, plus the clients' flows with `drainFlows`. */
  #sessions(): number {
    return (this.#core?.sessions ?? 0) + (this.#o.drainFlows ? this.#flows() : 0);
  }

  #flows(): number {
    return this.#transport?.flows ?? 0;
  }

  /** The address of the upstream in use (the built-in callee's once open). */
  get upstream(): { host: string; port: number } | undefined {
    return this.#o.upstream === 'builtin' ? this.#uas?.address : this.#o.upstream;
  }

  /** The port bound (the OS's choice when configured as 0). */
  get port(): number {
    return this.#transport?.port ?? this.#o.port;
  }

  stats(): ListenerStats {
    const dialogs = this.#core?.sessions ?? 0;
    const flows = this.#flows();
    return {
      sessions: this.#sessions(),
      byKind: this.#o.drainFlows ? { dialogs, flows } : { dialogs },
      ...(this.#o.transport === 'udp' ? {} : { flows }),
      accepted: this.#accepted,
      refused: this.#refused,
      forced: this.#forced,
      upstreamFailures: this.#upstreamFailures,
      acceptErrors: this.#pastAcceptErrors + (this.#transport?.acceptErrors ?? 0),
      idleConnections: 0,
    };
  }

  /** The proxy core's own counters (requests, retransmissions, …), for tests and benchmarks. */
  proxyStats(): SipProxyStats | undefined {
    return this.#core?.stats();
  }

  /**
   * A note from a listener of the same config beside this one (`ListenerEvents.onNote`): counted when
   * the dialog is tracked here, ignored otherwise (and while closed).
   */
  applyNote(note: ListenerNote): void {
    if (note.kind === 'sip-dialog') this.#core?.applyNote(note);
  }

  /** A front end sharing its port that has given it up (closing): new traffic to the port goes to the others. */
  get gaveUpSharedPort(): boolean {
    return this.#transport instanceof SipSharedPortTransport && this.#transport.gaveUpSharedPort;
  }

  /** The port only this listener has, beside the shared one (`reusePort`, udp and tcp proxies). */
  get ownPort(): number | undefined {
    return this.#transport instanceof SipSharedPortTransport ? this.#transport.ownPort : undefined;
  }

  #changed(): void {
    this.life.sessionsChanged();
    this.#o.onChange?.(false);
  }

  /** For good: new sessions are refused; with a shared port, it is given up to the listeners beside. */
  async #stopListening(): Promise<void> {
    // The shared port first, then refusing: a TCP connect the kernel queued on this front end is
    // accepted while its socket closes (src/net: queued connects are not reset), and with a front end
    // beside it to take new calls that one is served as a call here, not refused with a 503.
    if (this.#transport instanceof SipSharedPortTransport) await this.#transport.stopShared();
    this.#setRefusing(true);
  }

  #setRefusing(refusing: boolean): void {
    if (this.#core) this.#core.refusing = refusing;
    if (refusing && this.#core) this.#drainer.start();
    else this.#drainer.stop();
  }

  async #bind(refusing: boolean): Promise<void> {
    const o = this.#o;
    let upstream: { host: string; port: number };
    if (o.upstream === 'builtin') {
      this.#uas = new SipBuiltinUas(o.transport, o.host);
      upstream = await this.#uas.start();
    } else {
      upstream = o.upstream;
    }
    let core: SipProxyCore | null = null;
    const events: SipTransportEvents = {
      onMessage: (message, from) => core?.receive(message, from),
      onParseError: (err, from) => core?.receiveError(err, from),
    };
    const options: SipTransportOptions = {
      host: o.host,
      port: o.port,
      events,
      onError: o.onError,
      onFlowsChanged: () => this.#changed(),
      reusePort: o.reusePort,
    };
    let transport: SipTransport;
    try {
      transport = await this.#transportFor(options);
      await transport.listen();
    } catch (err) {
      this.#tls?.close();
      this.#tls = null;
      await this.#uas?.close();
      this.#uas = null;
      throw err;
    }
    const own = transport instanceof SipSharedPortTransport ? transport.ownPort : undefined;
    core = new SipProxyCore({
      self: {
        host: o.host,
        port: own ?? transport.port,
        transport: o.transport,
        ...(own === undefined ? {} : { sharedPort: transport.port }),
      },
      upstream,
      sender: transport,
      sink: this.#sink,
      retryAfter: o.retryAfter ?? SIP_DEFAULT_RETRY_AFTER_S,
      redirect: o.redirect,
      maxIdleMs: o.maxIdleMs ?? SIP_DEFAULT_MAX_IDLE_MS,
      endWaitMs: o.endWaitMs,
      onError: o.onError,
      onNote: o.onNote,
    });
    this.#core = core;
    this.#transport = transport;
    this.#setRefusing(refusing);
  }

  async #transportFor(options: SipTransportOptions): Promise<SipTransport> {
    const o = this.#o;
    const shares = o.reusePort === true || o.sharePort === true;
    if (shares && o.upstream !== 'builtin' && (o.transport === 'udp' || o.transport === 'tcp')) {
      return this.#sharedPortTransport(options, o.transport);
    }
    if (o.transport === 'udp') return new SipUdpTransport(options);
    if (o.transport === 'tcp') return new SipTcpTransport(options);
    if (o.transport === 'ws') return new SipWsTransport(options);
    if (!o.tls)
      throw new EbbError(
        'EBB_BAD_CONFIG',
        `${this.description}: transport ${o.transport} needs tls: { cert, key }`,
      );
    let secure: SipTcpTransport | SipWsTransport | null = null;
    this.#tls = await ReloadingSecureContext.open({
      files: o.tls,
      onReload: (credentials) => {
        secure?.useTls(credentials);
        o.onTlsReload?.(credentials);
      },
      onError: (err) => o.onError?.(err),
    });
    const credentials = this.#tls.credentials;
    secure =
      o.transport === 'wss'
        ? new SipWsTransport(options, { credentials })
        : new SipTcpTransport(options, {
            credentials,
            dial: o.upstream === 'builtin' ? false : (o.tlsDial ?? {}),
          });
    return secure;
  }

  /**
   * The shared port plus one of its own (same host, port 0): responses and route-set requests come back
   * to this listener whichever one beside it the kernel would have chosen (SPEC §13). tls, ws and wss
   * share their port without an own one: they are not threaded (see `threadable()`).
   */
  #sharedPortTransport(options: SipTransportOptions, name: 'udp' | 'tcp'): SipSharedPortTransport {
    const make = (o: SipTransportOptions) =>
      name === 'udp' ? new SipUdpTransport(o) : new SipTcpTransport(o);
    // Threads share on purpose (reusePort); one thread sets SO_REUSEPORT all the same, after the probe.
    const shared = make({
      ...options,
      reusePort: this.#o.reusePort === true ? true : undefined,
      shared: true,
    });
    const own = make({ ...options, port: 0, reusePort: false, firstConnectionId: OWN_FIRST_CONNECTION_ID });
    return new SipSharedPortTransport(shared, own);
  }

  /** The certificate source while open with TLS (tests read what is in use). */
  get tls(): ReloadingSecureContext | null {
    return this.#tls;
  }

  /** Once no dialog is left: the proxy core, the socket and the built-in callee go. */
  async #release(): Promise<void> {
    const core = this.#core;
    const transport = this.#transport;
    this.#core = null;
    this.#transport = null;
    this.#drainer.stop();
    core?.close();
    this.#pastAcceptErrors += transport?.acceptErrors ?? 0;
    await transport?.close();
    this.#tls?.close();
    this.#tls = null;
    await this.#uas?.close();
    this.#uas = null;
  }
}

/** `sip` in a pool config: the record-routing proxy, in front of `upstream` or the built-in callee. */
export function createSipListener(
  address: string,
  config: SipListenerConfig,
  build: ListenerBuild,
): Listener {
  const { target } = config;
  return new SipListener({
    host: address,
    port: config.port,
    transport: config.transport,
    upstream: target.kind === 'builtin' ? 'builtin' : { host: target.host, port: target.port },
    onChange: build.events.onChange,
    onError: reportTo(build.events.onError),
    onNote: build.events.onNote,
    reusePort: build.reusePort,
    sharePort: true,
    retryAfter: config.retryAfter,
    redirect:
      config.reroute === 'redirect'
        ? () => acceptingMember(build.view(), build.member, build.service.id)
        : undefined,
    maxIdleMs: config.maxIdleMs,
    closeSpreadMs: config.closeSpreadMs,
    drainFlows: config.drainFlows,
    ...(config.tls ? { tls: config.tls } : {}),
  });
}

/**
 * Socket errors arrive as EbbErrors already throttled by `src/net`; anything else is a bug met while
 * handling one message (the message was dropped): given a code, and throttled so a message that trips it
 * over and over is logged once a minute.
 */
function reportTo(onError: ((err: EbbError) => void) | undefined): (err: unknown) => void {
  const bugs = new ErrorThrottle<EbbError>((err, suppressed) =>
    onError?.(
      suppressed === 0 ? err : new EbbError(err.code, `${err.message} (${suppressed} more since the last)`),
    ),
  );
  return (err) => {
    if (err instanceof EbbError) onError?.(err);
    else
      bugs.push(
        new EbbError('EBB_SIP_INTERNAL', `sip: ${String((err as Error)?.message ?? err)}`, { cause: err }),
      );
  };
}
