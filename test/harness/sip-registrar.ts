import { SipTcpTransport } from '../../src/listeners/index.ts';
import { DemoUas, type SipMessage, type SipPeer } from '../../src/sip/index.ts';
import { loadTlsCredentials, type TlsCredentials } from '../../src/tls/index.ts';

/**
 * A registrar (and callee) upstream of a pool's members for the registration tests: Ebb's demo UAS over
 * TCP in the test process, recording where each REGISTER came from — a member's front end connects from
 * that member's address, so `registers` says which member a phone registered through.
 */
export class SipRegistrar {
  readonly registers: Array<{ from: string; at: number; expires: string | undefined }> = [];
  readonly #transport: SipTcpTransport;
  #uas: DemoUas | null = null;

  private constructor(tls: TlsCredentials | undefined) {
    this.#transport = new SipTcpTransport(
      {
        host: '127.0.0.1',
        port: 0,
        events: {
          onMessage: (m: SipMessage, from: SipPeer) => {
            if (m.kind === 'request' && m.method === 'REGISTER') {
              const expires = m.headers.find((h) => h.name.toLowerCase() === 'expires')?.value;
              this.registers.push({ from: from.host, at: Date.now(), expires });
            }
            this.#uas?.receive(m, from);
          },
          onParseError: (err, from) => this.#uas?.receiveError(err, from),
        },
      },
      tls ? { credentials: tls, dial: false } : undefined,
    );
  }

  /** Over TCP, or over TLS with `tls` (a certificate for 127.0.0.1). */
  static async start(tls?: { cert: string; key: string }): Promise<SipRegistrar> {
    const r = new SipRegistrar(tls ? await loadTlsCredentials(tls) : undefined);
    await r.#transport.listen();
    r.#uas = new DemoUas({ host: '127.0.0.1', port: r.#transport.port, transport: 'tcp' }, r.#transport);
    return r;
  }

  get address(): string {
    return `127.0.0.1:${this.#transport.port}`;
  }

  async stop(): Promise<void> {
    this.#uas?.close();
    await this.#transport.close();
  }
}
