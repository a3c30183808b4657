import { SipProxyCore, type SipProxyStats, type SipTransportName } from '../sip/index.ts';
import type { Listener, SessionSink } from './listener.ts';
import { SipBuiltinUas } from './sip-builtin-uas.ts';
import type { SipTransport, SipTransportEvents } from './sip-transport.ts';
import { SipTcpTransport } from './sip-tcp-transport.ts';
import { SipUdpTransport } from './sip-udp-transport.ts';
import { formatAddress } from './tcp-listener.ts';

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
  sink: SessionSink;
  /** Seconds in Retry-After of the 503 sent while refusing. */
  retryAfter?: number;
  /** `reroute: redirect`: an accepting member to send new sessions to with a 302 while refusing. */
  redirect?: () => { host: string } | undefined;
  maxIdleMs?: number;
  /** How long ending sessions waits for the answers to its BYEs. */
  endWaitMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * A SIP front end (SPEC §4.2): a record-routing proxy in front of one SIP server, over UDP or TCP, whose
 * sessions are dialogs. Refusing keeps the socket open — new calls, subscriptions and registrations get
 * 503 (or 302), OPTIONS to the front end gets 503 so load balancers take it out, and everything inside
 * existing dialogs goes on flowing.
 */
export class SipListener implements Listener {
  readonly description: string;
  readonly #o: SipListenerOptions;
  #transport: SipTransport | null = null;
  #core: SipProxyCore | null = null;
  #uas: SipBuiltinUas | null = null;

  constructor(options: SipListenerOptions) {
    this.#o = options;
    const up =
      options.upstream === 'builtin'
        ? 'builtin:sip-uas'
        : formatAddress(options.upstream.host, options.upstream.port);
    this.description = `sip/${options.transport} ${formatAddress(options.host, options.port)} → ${up}`;
  }

  get sessions(): number {
    return this.#core?.sessions ?? 0;
  }

  get refusing(): boolean {
    return this.#core?.refusing ?? true;
  }

  /** The address of the upstream in use (the built-in callee's once open). */
  get upstream(): { host: string; port: number } | undefined {
    return this.#o.upstream === 'builtin' ? this.#uas?.address : this.#o.upstream;
  }

  /** The port bound (the OS's choice when configured as 0). */
  get port(): number {
    return this.#transport?.port ?? this.#o.port;
  }

  stats(): SipProxyStats | undefined {
    return this.#core?.stats();
  }

  async open(refusing: boolean): Promise<void> {
    if (this.#core) {
      this.#core.refusing = refusing;
      return;
    }
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
    const options = { host: o.host, port: o.port, events, onError: o.onError };
    const transport = o.transport === 'udp' ? new SipUdpTransport(options) : new SipTcpTransport(options);
    try {
      await transport.listen();
    } catch (err) {
      await this.#uas?.close();
      this.#uas = null;
      throw err;
    }
    core = new SipProxyCore({
      self: { host: o.host, port: transport.port, transport: o.transport },
      upstream,
      sender: transport,
      sink: o.sink,
      retryAfter: o.retryAfter ?? SIP_DEFAULT_RETRY_AFTER_S,
      redirect: o.redirect,
      maxIdleMs: o.maxIdleMs ?? SIP_DEFAULT_MAX_IDLE_MS,
      endWaitMs: o.endWaitMs,
      onError: o.onError,
    });
    core.refusing = refusing;
    this.#core = core;
    this.#transport = transport;
  }

  /** Synchronous underneath: once this resolves, every new session that arrives is turned away. */
  async refuse(): Promise<void> {
    if (this.#core) this.#core.refusing = true;
  }

  async accept(): Promise<void> {
    if (this.#core) this.#core.refusing = false;
  }

  async endSessions(): Promise<number> {
    return this.#core ? this.#core.endSessions() : 0;
  }

  async close(): Promise<void> {
    const core = this.#core;
    if (!core) return;
    core.refusing = true;
    if (core.sessions > 0) await core.endSessions();
    this.#core = null;
    core.close();
    await this.#transport?.close();
    this.#transport = null;
    await this.#uas?.close();
    this.#uas = null;
  }
}
