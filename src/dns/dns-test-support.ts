/** Shared by the dns tests: a sample pool, query builders and small UDP/TCP clients. */
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, RecordType } from 'dns-packet';
import type { MemberView, PoolView, ServiceView } from '../core/index.ts';
import { decodeQuery } from './dns-message.ts';
import { encodeResponse } from './response-writer.ts';
import { answerQuery, answerReject, type AnswerContext } from './zone-answer.ts';

export const FQDN = 'pool1.ebb.test';

export function service(id: string, accepting: boolean, listeners: ServiceView['listeners']): ServiceView {
  return {
    id,
    state: accepting ? 'running' : 'paused',
    startup: 'automatic',
    accepting,
    sessions: 0,
    listeners,
  };
}

export function member(
  id: string,
  addresses: string[],
  opts: { agentUp?: boolean; frontend?: boolean; echo?: boolean } = {},
): MemberView {
  return {
    id,
    addresses,
    agentUp: opts.agentUp ?? true,
    services: [
      service('frontend', opts.frontend ?? true, [
        { protocol: 'sip', transport: 'udp', port: 5060 },
        { protocol: 'sip', transport: 'tcp', port: 5061 },
      ]),
      service('echo', opts.echo ?? true, [{ protocol: 'tcp', transport: 'tcp', port: 7000 }]),
      service('web', true, [{ protocol: 'http', transport: 'tcp', port: 8080 }]),
    ],
  };
}

/** fe01 (v4 + v6), fe02, fe03: all up and accepting. */
export function sampleView(overrides: Partial<PoolView> = {}): PoolView {
  return {
    name: 'pool1',
    fqdn: FQDN,
    dnsTtl: 5,
    members: [
      member('fe01', ['127.0.0.11', 'fd00::11']),
      member('fe02', ['127.0.0.12']),
      member('fe03', ['127.0.0.13']),
    ],
    ...overrides,
  };
}

export interface QueryOptions {
  id?: number;
  flags?: number;
  /** Add an OPT record with this UDP payload size. */
  edns?: number;
  ednsVersion?: number;
  dnssecOk?: boolean;
}

export function queryPacket(name: string, type: RecordType | number, opts: QueryOptions = {}): Packet {
  const packet: Packet = {
    type: 'query',
    id: opts.id ?? 4242,
    flags: opts.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [
      { name, type: typeof type === 'number' ? (`UNKNOWN_${type}` as RecordType) : type, class: 'IN' },
    ],
  };
  if (opts.edns !== undefined) {
    packet.additionals = [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: opts.edns,
        extendedRcode: 0,
        ednsVersion: opts.ednsVersion ?? 0,
        flags: opts.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
        flag_do: opts.dnssecOk ?? false,
        options: [],
      },
    ];
  }
  return packet;
}

export function queryBytes(name: string, type: RecordType | number, opts: QueryOptions = {}): Buffer {
  return dnsPacket.encode(queryPacket(name, type, opts));
}

export function context(overrides: Partial<AnswerContext> = {}): AnswerContext {
  return {
    transport: 'udp',
    maxUdpPayload: 1232,
    serial: () => 2024,
    nsAddresses: ['127.0.0.53'],
    ...overrides,
  };
}

/** The whole pure path, bytes to bytes: decode, answer, encode; null when the message is dropped. */
export function answerBytes(view: PoolView, msg: Buffer, ctx: AnswerContext = context()): Buffer | null {
  const decoded = decodeQuery(msg);
  if (decoded.kind === 'drop') return null;
  const response =
    decoded.kind === 'reject'
      ? answerReject(decoded.id, decoded.flags, decoded.rcode)
      : answerQuery(decoded.query, view, ctx);
  return encodeResponse(response, false);
}

/** `answerBytes`, then decoded with dns-packet as an independent check of the encoding. */
export function askBytes(view: PoolView, msg: Buffer, ctx: AnswerContext = context()): DecodedPacket | null {
  const out = answerBytes(view, msg, ctx);
  return out === null ? null : dnsPacket.decode(out);
}

export function ask(
  view: PoolView,
  name: string,
  type: RecordType | number,
  opts: QueryOptions = {},
  ctx: AnswerContext = context(),
): DecodedPacket & { rcode: string } {
  const res = askBytes(view, queryBytes(name, type, opts), ctx);
  if (res === null) throw new Error('dropped');
  return res as DecodedPacket & { rcode: string };
}

/** The RCODE including EDNS's extended bits (RFC 6891 §6.1.3). */
export function fullRcode(packet: DecodedPacket): number {
  const opt = packet.additionals?.find((a) => a.type === 'OPT');
  const ext = opt && 'extendedRcode' in opt ? opt.extendedRcode : 0;
  return ((packet.flags ?? 0) & 0xf) | (ext << 4);
}

export function addressesOf(packet: Packet): string[] {
  return (packet.answers ?? []).flatMap((a) => (a.type === 'A' || a.type === 'AAAA' ? [a.data] : []));
}

/** Sends one UDP datagram and waits for one reply, or null after `timeoutMs`. */
export function udpExchange(port: number, msg: Buffer, timeoutMs = 1000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => finish(null), timeoutMs);
    const finish = (reply: Buffer | null): void => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    socket.on('message', (reply) => finish(reply));
    socket.on('error', () => finish(null));
    socket.send(msg, port, '127.0.0.1');
  });
}

export function tcpConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

/** Reads `count` length-prefixed replies from a socket, or fewer if it closes or `timeoutMs` passes. */
export function readReplies(socket: Socket, count: number, timeoutMs = 2000): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const replies: Buffer[] = [];
    let buffered = Buffer.alloc(0);
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', done);
      resolve(replies);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const len = buffered.readUInt16BE(0);
        replies.push(buffered.subarray(2, 2 + len));
        buffered = buffered.subarray(2 + len);
        if (replies.length >= count) return done();
      }
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', onData);
    socket.on('close', done);
  });
}

export async function tcpExchange(port: number, msg: Buffer): Promise<Buffer | null> {
  const socket = await tcpConnect(port);
  try {
    socket.write(frame(msg));
    const [reply] = await readReplies(socket, 1);
    return reply ?? null;
  } finally {
    socket.destroy();
  }
}

/** Resolves when the socket closes, or false after `timeoutMs`. */
export function closed(socket: Socket, timeoutMs: number): Promise<boolean> {
  if (socket.destroyed || socket.closed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('error', () => undefined);
  });
}
