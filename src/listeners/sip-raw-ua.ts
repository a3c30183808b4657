import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import {
  getHeader,
  getHeaderValues,
  parseDatagram,
  parseNameAddr,
  SipStreamParser,
  type SipMessage,
  type SipResponse,
} from '../sip/index.ts';

// Test support for the SIP listener's tests on real sockets (not part of Ebb).

const host = '127.0.0.1';

/** A bare-bones SIP phone on a real socket: sends text, keeps what comes back. */
export class RawUa {
  readonly transport: 'udp' | 'tcp';
  readonly received: SipMessage[] = [];
  port = 0;
  /** TCP: the front end closed the connection. */
  closed = false;
  #udp: UdpSocket | undefined;
  #tcp: Socket | undefined;
  #target: { host: string; port: number };
  #callId = randomBytes(6).toString('hex');
  #tag = randomBytes(4).toString('hex');
  #cseq = 0;

  private constructor(transport: 'udp' | 'tcp', target: { host: string; port: number }) {
    this.transport = transport;
    this.#target = target;
  }

  static async open(transport: 'udp' | 'tcp', target: { host: string; port: number }): Promise<RawUa> {
    const ua = new RawUa(transport, target);
    if (transport === 'udp') {
      const s = createSocket('udp4');
      s.on('message', (buf) => ua.received.push(parseDatagram(buf)));
      await new Promise<void>((resolve) => s.bind(0, host, () => resolve()));
      ua.#udp = s;
      ua.port = s.address().port;
    } else {
      const parser = new SipStreamParser({ onMessage: (m) => ua.received.push(m), onError: () => {} });
      const s = connect({ host: target.host, port: target.port });
      s.on('data', (d: Buffer) => parser.push(d));
      s.on('error', () => {});
      s.on('close', () => (ua.closed = true));
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      ua.#tcp = s;
      ua.port = s.localPort!;
    }
    return ua;
  }

  /**
   * Another socket (UDP) or connection (TCP) speaking for the same party of the same call, from another
   * port: the kernel may hand what it sends to another listener sharing the front end's port. `target`:
   * where it sends (default: where this one does).
   */
  async twin(target = this.#target): Promise<RawUa> {
    const t = await RawUa.open(this.transport, target);
    t.#callId = this.#callId;
    t.#tag = this.#tag;
    t.#cseq = this.#cseq;
    return t;
  }

  send(text: string): void {
    if (this.#udp) this.#udp.send(text, this.#target.port, this.#target.host);
    else this.#tcp!.write(text);
  }

  request(
    method: string,
    opts: { uri?: string; toTag?: string; route?: string[]; user?: string | null } = {},
  ): string {
    if (method !== 'ACK') this.#cseq++;
    const user = opts.user === null ? '' : `${opts.user ?? 'conf'}@`;
    const uri = opts.uri ?? `sip:${user}${this.#target.host}:${this.#target.port}`;
    const t = this.transport.toUpperCase();
    return [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/${t} ${host}:${this.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      ...(opts.route ?? []).map((r) => `Route: ${r}`),
      'Max-Forwards: 70',
      `From: <sip:ua@${host}>;tag=${this.#tag}`,
      `To: <sip:conf@${this.#target.host}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
      `Call-ID: ${this.#callId}`,
      `CSeq: ${method === 'ACK' ? 1 : this.#cseq} ${method}`,
      `Contact: <sip:ua@${host}:${this.port};transport=${this.transport}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  }

  async next(match: (m: SipMessage) => boolean, what: string, timeoutMs = 3000): Promise<SipMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(match);
      if (i !== -1) return this.received.splice(i, 1)[0]!;
      if (Date.now() > deadline) assert.fail(`no ${what}; got ${this.received.map(line).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  response(status: number, method?: string): Promise<SipResponse> {
    return this.next(
      (m) =>
        m.kind === 'response' && m.status === status && (!method || getHeader(m, 'CSeq')!.endsWith(method)),
      `${status}`,
    ) as Promise<SipResponse>;
  }

  /** INVITE, 200, ACK along the Record-Route: returns what the BYE needs. */
  async call(): Promise<{ toTag: string; contact: string; route: string[] }> {
    this.send(this.request('INVITE'));
    const ok = await this.response(200, 'INVITE');
    const toTag = parseNameAddr(getHeader(ok, 'To')!).params.get('tag')!;
    const contact = parseNameAddr(getHeader(ok, 'Contact')!).uri;
    const route = getHeaderValues(ok, 'Record-Route').reverse();
    this.send(this.request('ACK', { uri: contact, toTag, route }));
    return { toTag, contact, route };
  }

  close(): void {
    this.#udp?.close();
    this.#tcp?.destroy();
  }
}

export function line(m: SipMessage): string {
  return m.kind === 'request' ? m.method : String(m.status);
}

export async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not reached: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
