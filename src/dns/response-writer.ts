/**
 * DNS responses onto the wire (RFC 1035 §4.1), for the few record types the pool zone has.
 *
 * Written here rather than with dns-packet: names are compressed (RFC 1035 §4.1.4), which fits about
 * twice as many addresses in a UDP response before TC, and it is several times faster, which matters for
 * queries/s (SPEC §9). Tests decode every response with dns-packet and dig as independent checks.
 */
import { addressBytes } from './address-bytes.ts';
import { Flag, MAX_MESSAGE_SIZE, QType } from './dns-message.ts';

export type ResourceRecord =
  | { type: 'A' | 'AAAA' | 'NS'; name: string; ttl: number; data: string }
  | { type: 'SRV'; name: string; ttl: number; data: SrvData }
  | { type: 'SOA'; name: string; ttl: number; data: SoaData };

export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** The response's OPT pseudo-record (RFC 6891 §6.1.2). */
export interface OptRecord {
  udpPayloadSize: number;
  /** The full 12-bit RCODE; its upper 8 bits go here, the lower 4 in the header. */
  rcode: number;
  dnssecOk: boolean;
}

export interface DnsResponse {
  id: number;
  /** Header flags: QR, opcode, AA, TC, RD, CD, and the low four bits of the RCODE. */
  flags: number;
  /** The question to echo, as received; null for none. */
  question: Buffer | null;
  /** The question's name as dotted text, for compression; null when unknown or ambiguous. */
  questionName: string | null;
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  /** Additional RRsets, each sent whole or left out when space is short (RFC 2181 §9). */
  additionals: ResourceRecord[][];
  opt: OptRecord | null;
  /** The largest message allowed: 512 or the EDNS size over UDP, 65535 over TCP. */
  maxSize: number;
}

/** RFC 1035 §2.3.4. */
const MAX_LABEL = 63;
const MAX_NAME = 255;
/** An OPT record with no options: root name, type, class, TTL, RDLENGTH. */
const OPT_SIZE = 11;
const TYPE_CODES = { A: QType.A, AAAA: QType.AAAA, NS: QType.NS, SOA: QType.SOA, SRV: QType.SRV } as const;
const CLASS_IN = 1;

/** Thrown inside the writer when the message would exceed its budget. */
const overflow = Symbol('overflow');

/** One scratch buffer, reused: encoding is synchronous, and the result is copied out. */
const scratch = Buffer.allocUnsafe(MAX_MESSAGE_SIZE + 2);

/**
 * Encodes a response; with `lengthPrefix` it carries TCP's two-byte length (RFC 1035 §4.2.2).
 *
 * Truncation: when the answer and authority sections do not fit in `maxSize`, they are left out and TC
 * is set, so the client retries over TCP (RFC 2181 §9, RFC 7766 §5); additional RRsets that do not fit
 * are left out without TC. The OPT record always fits. Throws on a name that cannot be encoded.
 */
export function encodeResponse(r: DnsResponse, lengthPrefix = false): Buffer {
  const w = new Writer(lengthPrefix ? 2 : 0, Math.min(r.maxSize, MAX_MESSAGE_SIZE) - (r.opt ? OPT_SIZE : 0));
  let flags = r.flags;
  w.u16(r.id);
  w.u16(0); // flags, patched below
  w.u16(r.question ? 1 : 0);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  if (r.question) w.question(r.question, r.questionName);
  const afterQuestion = w.mark();

  let answers = r.answers.length;
  let authorities = r.authorities.length;
  try {
    for (const rr of r.answers) w.record(rr);
    for (const rr of r.authorities) w.record(rr);
  } catch (err) {
    if (err !== overflow) throw err;
    w.rollback(afterQuestion);
    answers = 0;
    authorities = 0;
    flags |= Flag.tc;
  }
  let additionals = 0;
  for (const rrset of flags & Flag.tc ? [] : r.additionals) {
    const before = w.mark();
    try {
      for (const rr of rrset) w.record(rr);
      additionals += rrset.length;
    } catch (err) {
      if (err !== overflow) throw err;
      w.rollback(before);
    }
  }
  if (r.opt) {
    w.unlimited();
    w.opt(r.opt);
    additionals++;
  }
  w.patch(2, (flags | Flag.qr) & 0xffff);
  w.patch(6, answers);
  w.patch(8, authorities);
  w.patch(10, additionals);
  return w.finish();
}

class Writer {
  readonly #start: number;
  #limit: number;
  #offset: number;
  /** Name suffix → offset (from the message start) where it was written, for compression. */
  readonly #names = new Map<string, number>();

  constructor(prefix: number, budget: number) {
    this.#start = prefix;
    this.#offset = prefix;
    this.#limit = prefix + budget;
  }

  mark(): number {
    return this.#offset;
  }

  rollback(mark: number): void {
    this.#offset = mark;
    for (const [name, at] of this.#names) if (at + this.#start >= mark) this.#names.delete(name);
  }

  /** Room for the OPT record, which was kept out of the budget. */
  unlimited(): void {
    this.#limit = scratch.length;
  }

  patch(at: number, value: number): void {
    scratch.writeUInt16BE(value, this.#start + at);
  }

  finish(): Buffer {
    const length = this.#offset - this.#start;
    if (this.#start === 2) scratch.writeUInt16BE(length, 0);
    return Buffer.from(scratch.subarray(0, this.#offset));
  }

  #room(n: number): number {
    const at = this.#offset;
    if (at + n > this.#limit) throw overflow;
    this.#offset += n;
    return at;
  }

  u16(value: number): void {
    scratch.writeUInt16BE(value & 0xffff, this.#room(2));
  }

  u32(value: number): void {
    scratch.writeUInt32BE(value >>> 0, this.#room(4));
  }

  /**
   * The question as received. Its name's suffixes are offered for compression: a label starts at the same
   * offset in the dotted name as on the wire, so no parsing is needed. Skipped when a label holds a dot,
   * as the dotted name would then read back differently.
   */
  question(wire: Buffer, name: string | null): void {
    const at = this.#room(wire.length) - this.#start;
    wire.copy(scratch, at + this.#start);
    if (name === null || name === '') return;
    this.#names.set(name, at);
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      this.#names.set(name.slice(dot + 1), at + dot + 1);
    }
  }

  /** A dotted name without the trailing dot ('' is the root), compressed unless `compress` is false. */
  name(name: string, compress = true): void {
    if (name.length + 2 > MAX_NAME) throw new Error(`dns: name too long: ${name}`);
    let rest = name;
    while (rest !== '') {
      const known = compress ? this.#names.get(rest) : undefined;
      if (known !== undefined) {
        this.u16(0xc000 | known);
        return;
      }
      const dot = rest.indexOf('.');
      const label = dot < 0 ? rest : rest.slice(0, dot);
      if (label.length === 0 || label.length > MAX_LABEL) throw new Error(`dns: bad label in name: ${name}`);
      const at = this.#room(1 + label.length);
      const here = at - this.#start;
      if (compress && here < 0x4000) this.#names.set(rest, here);
      scratch[at] = label.length;
      scratch.write(label, at + 1, 'latin1');
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
    scratch[this.#room(1)] = 0;
  }

  record(rr: ResourceRecord): void {
    this.name(rr.name);
    this.u16(TYPE_CODES[rr.type]);
    this.u16(CLASS_IN);
    this.u32(rr.ttl);
    const lengthAt = this.#room(2);
    const dataStart = this.#offset;
    switch (rr.type) {
      case 'A':
      case 'AAAA': {
        const bytes = addressBytes(rr.data);
        if (bytes === null || bytes.length !== (rr.type === 'A' ? 4 : 16)) {
          throw new Error(`dns: not an ${rr.type} address: ${rr.data}`);
        }
        bytes.copy(scratch, this.#room(bytes.length));
        break;
      }
      case 'NS':
        this.name(rr.data);
        break;
      case 'SOA':
        this.name(rr.data.mname);
        this.name(rr.data.rname);
        this.u32(rr.data.serial);
        this.u32(rr.data.refresh);
        this.u32(rr.data.retry);
        this.u32(rr.data.expire);
        this.u32(rr.data.minimum);
        break;
      case 'SRV':
        this.u16(rr.data.priority);
        this.u16(rr.data.weight);
        this.u16(rr.data.port);
        this.name(rr.data.target, false); // RFC 2782: the target is not compressed
        break;
    }
    scratch.writeUInt16BE(this.#offset - dataStart, lengthAt);
  }

  /** RFC 6891 §6.1.2-§6.1.3: owner root, CLASS = payload size, TTL = extended RCODE, version 0, DO. */
  opt(opt: OptRecord): void {
    scratch[this.#room(1)] = 0;
    this.u16(QType.OPT);
    this.u16(opt.udpPayloadSize);
    this.u32(((opt.rcode >> 4) << 24) | (opt.dnssecOk ? 0x8000 : 0));
    this.u16(0);
  }
}
