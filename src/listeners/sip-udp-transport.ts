import type { Socket } from 'node:dgram';
import { bindUdp } from '../net/index.ts';
import { isKeepAliveDatagram, parseDatagram, SipParseError, type SipPeer } from '../sip/index.ts';
import { SipTcpTransport } from './sip-tcp-transport.ts';
import type { SipTransport, SipTransportOptions } from './sip-transport.ts';

/**
 * Kernel buffer asked for on the UDP socket. Linux caps it at net.core.rmem_max (4 MB on the test
 * machines); a call burst that outruns the event loop then waits in the kernel instead of being dropped.
 */
export const SIP_UDP_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * SIP over UDP (RFC 3261 §18): one message per datagram, keep-alives and STUN dropped. A message the
 * core marks for TCP (too large for UDP, §18.1.1) goes over outgoing TCP connections opened on demand
 * from the same address; what comes back on them is delivered like the rest, with their connection id.
 */
export class SipUdpTransport implements SipTransport {
  readonly name = 'udp' as const;
  readonly #o: SipTransportOptions;
  #socket: Socket | null = null;
  #tcp: SipTcpTransport | null = null;
  readonly #listenTcp: boolean;
  #port: number;

  /**
   * `listenTcp`: also accept TCP on the bound port, as SIP servers do (RFC 3261 §18: a UDP server must
   * take TCP too) — for the built-in callee, which must take a UDP listener's large requests. Best effort:
   * a port whose TCP side is taken leaves it UDP only.
   */
  constructor(options: SipTransportOptions, listenTcp = false) {
    this.#o = options;
    this.#port = options.port;
    this.#listenTcp = listenTcp;
  }

  get port(): number {
    return this.#port;
  }

  readonly acceptErrors = 0;

  /** Effective receive buffer (Linux reports twice what was granted), for the benchmarks. */
  get receiveBufferSize(): number {
    return this.#socket?.getRecvBufferSize() ?? 0;
  }

  async listen(): Promise<void> {
    if (this.#socket) return;
    const socket = await bindUdp({
      host: this.#o.host,
      port: this.#o.port,
      label: 'sip/udp',
      recvBufferSize: SIP_UDP_BUFFER_BYTES,
      sendBufferSize: SIP_UDP_BUFFER_BYTES,
      reusePort: this.#o.reusePort,
      // After bind, errors are per datagram (EMSGSIZE, unreachable): reported, and the socket goes on.
      onError: (err) => this.#o.onError?.(err),
    });
    const shared = this.#o.shared ? { shared: true } : {};
    socket.on('message', (buf, rinfo) =>
      this.#onDatagram(buf, { host: rinfo.address, port: rinfo.port, ...shared }),
    );
    this.#port = socket.address().port;
    this.#socket = socket;
    if (this.#listenTcp) {
      const tcp = new SipTcpTransport({ ...this.#o, port: this.#port });
      try {
        await tcp.listen();
        this.#tcp = tcp;
      } catch {
        // UDP only: a large request to it then falls back to UDP (§18.1.1).
      }
    }
  }

  send(to: SipPeer, data: Buffer, onFail?: (err: Error) => void): void {
    const socket = this.#socket;
    if (!socket) {
      onFail?.(new Error('transport closed'));
      return;
    }
    if (to.transport === 'tcp' || to.connection !== undefined) {
      this.#tcp ??= new SipTcpTransport(this.#o);
      this.#tcp.send(to, data, onFail);
      return;
    }
    try {
      if (onFail) socket.send(data, to.port, to.host, (err) => err && onFail(err));
      else socket.send(data, to.port, to.host);
    } catch (err) {
      onFail?.(err as Error);
    }
  }

  /** Closes the socket; the TCP connections opened for large messages stay until `close()`. */
  async stopListening(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = null;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  async close(): Promise<void> {
    await this.#tcp?.close();
    this.#tcp = null;
    await this.stopListening();
  }

  #onDatagram(buf: Buffer, from: SipPeer): void {
    // CRLF/NUL keep-alives, and STUN (first byte 0 or 1, RFC 5626 §4.4.1 / RFC 7983), are not SIP.
    if (isKeepAliveDatagram(buf) || buf[0]! < 0x02) return;
    try {
      let message;
      try {
        message = parseDatagram(buf);
      } catch (err) {
        if (err instanceof SipParseError) return this.#o.events.onParseError(err, from);
        throw err;
      }
      this.#o.events.onMessage(message, from);
    } catch (err) {
      this.#o.onError?.(err);
    }
  }
}
