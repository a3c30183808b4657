import type { Socket } from 'node:dgram';
import { bindUdp } from '../net/index.ts';
import { isKeepAliveDatagram, parseDatagram, SipParseError, type SipPeer } from '../sip/index.ts';
import type { SipTransport, SipTransportOptions } from './sip-transport.ts';

/**
 * Kernel buffer asked for on the UDP socket. Linux caps it at net.core.rmem_max (4 MB on the test
 * machines); a call burst that outruns the event loop then waits in the kernel instead of being dropped.
 */
export const SIP_UDP_BUFFER_BYTES = 4 * 1024 * 1024;

/** SIP over UDP (RFC 3261 §18): one message per datagram, keep-alives and STUN dropped. */
export class SipUdpTransport implements SipTransport {
  readonly name = 'udp' as const;
  readonly #o: SipTransportOptions;
  #socket: Socket | null = null;
  #port: number;

  constructor(options: SipTransportOptions) {
    this.#o = options;
    this.#port = options.port;
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
      // After bind, errors are per datagram (EMSGSIZE, unreachable): reported, and the socket goes on.
      onError: (err) => this.#o.onError?.(err),
    });
    socket.on('message', (buf, rinfo) => this.#onDatagram(buf, { host: rinfo.address, port: rinfo.port }));
    this.#port = socket.address().port;
    this.#socket = socket;
  }

  send(to: SipPeer, data: Buffer, onFail?: (err: Error) => void): void {
    const socket = this.#socket;
    if (!socket) {
      onFail?.(new Error('transport closed'));
      return;
    }
    try {
      if (onFail) socket.send(data, to.port, to.host, (err) => err && onFail(err));
      else socket.send(data, to.port, to.host);
    } catch (err) {
      onFail?.(err as Error);
    }
  }

  async close(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = null;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
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
