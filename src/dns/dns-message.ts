/**
 * DNS queries off the wire: a strict reader for what the pool's name server needs (RFC 1035 §4.1).
 *
 * Not dns-packet's decoder, for three reasons: the question must be echoed byte for byte (the client's
 * case, RFC 4343 §4.1, and labels a dotted string cannot represent), a malformed query must be told apart
 * from one we merely do not serve (FORMERR vs NOTIMP vs drop), and only the header, the question and the
 * OPT record matter, so the rest is skipped without decoding. The reader never follows compression
 * pointers, so a pointer loop cannot hang it. Tests check it against dns-packet.
 */

/** RFC 1035 §4.1.1, RFC 6891 §9 (BADVERS is an extended RCODE). */
export const Rcode = {
  noError: 0,
  formErr: 1,
  servFail: 2,
  nxDomain: 3,
  notImp: 4,
  refused: 5,
  badVers: 16,
} as const;
export type Rcode = (typeof Rcode)[keyof typeof Rcode];

/** The query types this server treats specially (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891). */
export const QType = {
  A: 1,
  NS: 2,
  SOA: 6,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  TKEY: 249,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
} as const;

export const QClass = { IN: 1, ANY: 255 } as const;

/** Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD and CD). */
export const Flag = {
  qr: 0x8000,
  aa: 0x0400,
  tc: 0x0200,
  rd: 0x0100,
  ra: 0x0080,
  ad: 0x0020,
  cd: 0x0010,
} as const;

export const HEADER_SIZE = 12;
/** The largest DNS message: TCP's two-byte length prefix (RFC 1035 §4.2.2). */
export const MAX_MESSAGE_SIZE = 65535;
/** RFC 1035 §2.3.4: a name is at most 255 octets on the wire. */
const MAX_NAME_WIRE = 255;
const OPT_DO = 0x8000;

/** What a query's OPT pseudo-record said (RFC 6891 §6.1.2). */
export interface Edns {
  udpPayloadSize: number;
  version: number;
  dnssecOk: boolean;
}

export interface DnsQuestion {
  /** Labels as received (latin1, case kept); empty for the root. */
  labels: string[];
  /** The labels joined with dots, no trailing dot; '' for the root. */
  name: string;
  type: number;
  class: number;
  /** The question section exactly as received, echoed verbatim in the response. */
  wire: Buffer;
}

export interface DnsQuery {
  id: number;
  /** The query's header flags, from which the response copies opcode, RD and CD. */
  flags: number;
  question: DnsQuestion;
  edns: Edns | null;
}

/**
 * - `query`: a well-formed standard query with one question.
 * - `reject`: a message we answer with an error RCODE only (FORMERR, NOTIMP), with no question echoed.
 * - `drop`: not worth a reply — shorter than a header, or itself a response. Answering responses would
 *   let a spoofed packet bounce error replies between two servers forever.
 */
export type DecodeResult =
  | { kind: 'query'; query: DnsQuery }
  | { kind: 'reject'; id: number; flags: number; rcode: Rcode }
  | { kind: 'drop'; reason: 'short' | 'response' };

export function opcodeOf(flags: number): number {
  return (flags >> 11) & 0xf;
}

/** Reads one message. Never throws: every way it can be malformed is a FORMERR or a drop. */
export function decodeQuery(msg: Buffer): DecodeResult {
  if (msg.length < HEADER_SIZE) return { kind: 'drop', reason: 'short' };
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & Flag.qr) return { kind: 'drop', reason: 'response' };
  // RFC 1035 §4.1.1: only QUERY (0) is served; NOTIFY, UPDATE and the rest are not implemented.
  if (opcodeOf(flags) !== 0) return { kind: 'reject', id, flags, rcode: Rcode.notImp };
  const formErr: DecodeResult = { kind: 'reject', id, flags, rcode: Rcode.formErr };
  // RFC 9619: a QUERY carries exactly one question.
  if (msg.readUInt16BE(4) !== 1) return formErr;
  const otherRecords = msg.readUInt16BE(6) + msg.readUInt16BE(8);
  const additionals = msg.readUInt16BE(10);

  const question = readQuestion(msg, HEADER_SIZE);
  if (question === null) return formErr;
  let offset = HEADER_SIZE + question.wire.length;
  for (let i = 0; i < otherRecords; i++) {
    offset = skipRecord(msg, offset);
    if (offset < 0) return formErr;
  }
  let edns: Edns | null = null;
  for (let i = 0; i < additionals; i++) {
    const start = offset;
    const nameEnd = skipName(msg, start);
    if (nameEnd < 0 || nameEnd + 10 > msg.length) return formErr;
    const end = nameEnd + 10 + msg.readUInt16BE(nameEnd + 8);
    if (end > msg.length) return formErr;
    if (msg.readUInt16BE(nameEnd) === QType.OPT) {
      // RFC 6891 §6.1.1: at most one OPT, and its owner is the root.
      if (edns !== null || nameEnd !== start + 1) return formErr;
      edns = {
        udpPayloadSize: msg.readUInt16BE(nameEnd + 2),
        version: msg[nameEnd + 5]!,
        dnssecOk: (msg.readUInt16BE(nameEnd + 6) & OPT_DO) !== 0,
      };
    }
    offset = end;
  }
  if (offset !== msg.length) return formErr;
  return { kind: 'query', query: { id, flags, question, edns } };
}

/** The question name may not be compressed: the only thing before it is the header. */
function readQuestion(msg: Buffer, start: number): DnsQuestion | null {
  let offset = start;
  for (;;) {
    if (offset >= msg.length) return null;
    const len = msg[offset]!;
    if (len === 0) break;
    if (len > 63) return null; // a pointer (0xc0) or a reserved label type (RFC 6891 §5)
    offset += 1 + len;
  }
  const end = offset + 1;
  if (end - start > MAX_NAME_WIRE || end + 4 > msg.length) return null;
  // One string for the whole name; the labels are slices of it.
  const text = msg.toString('latin1', start, offset);
  const labels: string[] = [];
  for (let at = 0; at < text.length; at += 1 + msg[start + at]!) {
    labels.push(text.slice(at + 1, at + 1 + msg[start + at]!));
  }
  return {
    labels,
    name: labels.join('.'),
    type: msg.readUInt16BE(end),
    class: msg.readUInt16BE(end + 2),
    wire: msg.subarray(start, end + 4),
  };
}

/** Returns the offset after the name, or -1. A pointer ends a name, so nothing is followed. */
function skipName(msg: Buffer, start: number): number {
  let offset = start;
  for (;;) {
    if (offset >= msg.length) return -1;
    const len = msg[offset]!;
    if (len === 0) return offset - start + 1 > MAX_NAME_WIRE ? -1 : offset + 1;
    if ((len & 0xc0) === 0xc0) return offset + 2 <= msg.length ? offset + 2 : -1; // RFC 1035 §4.1.4
    if (len > 63) return -1;
    offset += 1 + len;
    if (offset - start > MAX_NAME_WIRE) return -1;
  }
}

function skipRecord(msg: Buffer, start: number): number {
  const nameEnd = skipName(msg, start);
  if (nameEnd < 0 || nameEnd + 10 > msg.length) return -1;
  const end = nameEnd + 10 + msg.readUInt16BE(nameEnd + 8);
  return end > msg.length ? -1 : end;
}
