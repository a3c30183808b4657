/**
 * A DNS client for benchmarks: one query at a time to one server, over UDP (one socket) or TCP (one
 * connection, RFC 1035 §4.2.2 length-prefixed), encoded and decoded with dns-packet. Every query is
 * bounded by a timeout.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { RecordType } from 'dns-packet';

export interface DnsAnswer {
  rcode: string;
  truncated: boolean;
  /** A/AAAA data of the answer section. */
  addresses: string[];
  /** SRV targets of the answer section. */
  srvTargets: string[];
  /** When the answer arrived (`performance.now()`). */
  receivedAt: number;
  /** Query round trip, ms. */
  rttMs: number;
}

export class DnsProbe {
  readonly transport: 'udp' | 'tcp';
  private readonly host: string;
  private readonly port: number;
  private udp: UdpSocket | null = null;
  private tcp: Socket | null = null;
  private tcpBuffer = Buffer.alloc(0);
  private nextId = Math.floor(Math.random() * 65_536);
  private pending: { id: number; resolve: (msg: Buffer) => void; reject: (err: Error) => void } | null = null;

  constructor(host: string, port: number, transport: 'udp' | 'tcp' = 'udp') {
    this.host = host;
    this.port = port;
    this.transport = transport;
  }

  async open(): Promise<void> {
    if (this.transport === 'udp') {
      const udp = createSocket('udp4');
      udp.on('message', (msg) => this.deliver(msg));
      udp.on('error', (err) => this.fail(err));
      await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
      this.udp = udp;
      return;
    }
    const tcp = connect({ host: this.host, port: this.port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      tcp.once('connect', () => resolve());
      tcp.once('error', reject);
    });
    tcp.on('error', (err) => this.fail(err));
    tcp.on('close', () => this.fail(new Error('DNS TCP connection closed')));
    tcp.on('data', (chunk: Buffer) => {
      this.tcpBuffer = Buffer.concat([this.tcpBuffer, chunk]);
      while (this.tcpBuffer.length >= 2) {
        const length = this.tcpBuffer.readUInt16BE(0);
        if (this.tcpBuffer.length < 2 + length) break;
        const msg = this.tcpBuffer.subarray(2, 2 + length);
        this.tcpBuffer = this.tcpBuffer.subarray(2 + length);
        this.deliver(Buffer.from(msg));
      }
    });
    this.tcp = tcp;
  }

  /** One query; rejects after `timeoutMs` without an answer (a lost UDP datagram, a stuck server). */
  async query(name: string, type: RecordType = 'A', timeoutMs = 1000): Promise<DnsAnswer> {
    if (this.pending) throw new Error('DnsProbe: one query at a time');
    const id = this.nextId++ & 0xffff;
    const packet = dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ type, name }] });
    const sentAt = performance.now();
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        reject(new Error(`no DNS answer for ${name} ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        id,
        resolve: (msg) => {
          clearTimeout(timer);
          this.pending = null;
          resolve(msg);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.pending = null;
          reject(err);
        },
      };
    });
    if (this.udp) this.udp.send(packet, this.port, this.host);
    else {
      const framed = Buffer.alloc(2 + packet.length);
      framed.writeUInt16BE(packet.length, 0);
      packet.copy(framed, 2);
      this.tcp!.write(framed);
    }
    const msg = await reply;
    const receivedAt = performance.now();
    const decoded = dnsPacket.decode(msg);
    const answers = decoded.answers ?? [];
    return {
      rcode: (decoded as { rcode?: string }).rcode ?? 'NOERROR',
      truncated: decoded.flag_tc,
      addresses: answers.flatMap((a) => (a.type === 'A' || a.type === 'AAAA' ? [a.data] : [])),
      srvTargets: answers.flatMap((a) => (a.type === 'SRV' ? [a.data.target] : [])),
      receivedAt,
      rttMs: receivedAt - sentAt,
    };
  }

  close(): void {
    this.udp?.close();
    this.udp = null;
    this.tcp?.destroy();
    this.tcp = null;
  }

  private deliver(msg: Buffer): void {
    // A late answer to a query that timed out has another id: ignore it.
    if (msg.length < 2 || !this.pending || msg.readUInt16BE(0) !== this.pending.id) return;
    this.pending.resolve(msg);
  }

  private fail(err: Error): void {
    this.pending?.reject(err);
  }
}
