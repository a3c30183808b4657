import { isIPv6 } from 'node:net';
import { DemoUas, type DemoUasStats, type SipTransportName } from '../sip/index.ts';
import type { SipTransport } from './sip-transport.ts';
import { SipTcpTransport } from './sip-tcp-transport.ts';
import { SipUdpTransport } from './sip-udp-transport.ts';

/**
 * `upstream: builtin:sip-uas` (SPEC §7): the demo callee on a loopback port the OS picks, speaking the
 * listener's transport, so a demo pool needs no SIP server installed.
 */
export class SipBuiltinUas {
  readonly #name: SipTransportName;
  readonly #host: string;
  #transport: SipTransport | null = null;
  #uas: DemoUas | null = null;

  /** `near` is the listener's address: an IPv6 listener gets an IPv6 loopback callee. */
  constructor(transport: SipTransportName, near: string) {
    this.#name = transport;
    this.#host = isIPv6(near) ? '::1' : '127.0.0.1';
  }

  get address(): { host: string; port: number } | undefined {
    return this.#transport ? { host: this.#host, port: this.#transport.port } : undefined;
  }

  stats(): DemoUasStats | undefined {
    return this.#uas?.stats();
  }

  async start(): Promise<{ host: string; port: number }> {
    if (!this.#transport) {
      const events = {
        onMessage: (...a: Parameters<DemoUas['receive']>) => this.#uas?.receive(...a),
        onParseError: (...a: Parameters<DemoUas['receiveError']>) => this.#uas?.receiveError(...a),
      };
      const options = { host: this.#host, port: 0, events };
      const transport =
        this.#name === 'udp' ? new SipUdpTransport(options, true) : new SipTcpTransport(options);
      await transport.listen();
      // A tls or ws listener reaches its in-process callee over plain TCP.
      const name = this.#name === 'udp' ? 'udp' : 'tcp';
      this.#uas = new DemoUas({ host: this.#host, port: transport.port, transport: name }, transport);
      this.#transport = transport;
    }
    return this.address!;
  }

  async close(): Promise<void> {
    this.#uas?.close();
    this.#uas = null;
    const transport = this.#transport;
    this.#transport = null;
    await transport?.close();
  }
}
