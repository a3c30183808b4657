/**
 * The pool zone's answers (SPEC §4.1), as a pure function of a query and a pool snapshot. No sockets.
 *
 * Names in the zone of `pool.fqdn` (matched case-insensitively, RFC 4343):
 *
 * | name                          | records                                                          |
 * |-------------------------------|------------------------------------------------------------------|
 * | `<fqdn>`                      | SOA, NS; A/AAAA of members whose primary service accepts         |
 * | `<service>.<fqdn>`            | A/AAAA of members whose `<service>` accepts                       |
 * | `_<service>._<udp|tcp>.<fqdn>`| SRV per accepting member and listener on that transport           |
 * | `<member>.<fqdn>`             | A/AAAA of that member, always                                     |
 * | `ns.<fqdn>`                   | A/AAAA of this name server, when it listens on a specific address |
 * | `_udp.<fqdn>`, `_tcp.<fqdn>`  | nothing (empty non-terminals above SRV names: NODATA)             |
 *
 * A member name wins over a service name, and both over `ns`, when they are spelled the same.
 */
import type { MemberView, PoolView } from '../core/index.ts';
import { addressBytes } from './address-bytes.ts';
import {
  Flag,
  MAX_MESSAGE_SIZE,
  QClass,
  QType,
  Rcode,
  opcodeOf,
  type DnsQuery,
  type DnsQuestion,
} from './dns-message.ts';
import type { DnsResponse, ResourceRecord } from './response-writer.ts';

export interface AnswerContext {
  transport: 'udp' | 'tcp';
  /**
   * The UDP payload size we advertise and the most we send (RFC 6891 §6.2.5). 1232 keeps a response in
   * one unfragmented packet on any path (DNS Flag Day 2020).
   */
  maxUdpPayload: number;
  /** The SOA serial; only called when an SOA goes into the response. */
  serial: () => number;
  /** The name server's own addresses, answered for `ns.<fqdn>`; may be empty. */
  nsAddresses: readonly string[];
  /** For tests; defaults to Math.random. */
  random?: () => number;
}

/** RFC 1035 §2.3.4: DNS without EDNS carries at most 512 bytes over UDP. */
const CLASSIC_UDP_SIZE = 512;
const SOA_REFRESH = 3600;
const SOA_RETRY = 600;
const SOA_EXPIRE = 86400;
/** RFC 2782: clients pick among equal priorities by weight; equal non-zero weights spread load evenly,
 * while weight 0 means "rarely, if others have weight", which is not what an accepting member is. */
const SRV_PRIORITY = 10;
const SRV_WEIGHT = 10;

type NodeKind =
  | { kind: 'apex' }
  | { kind: 'ns' }
  | { kind: 'member'; member: MemberView }
  | { kind: 'service'; service: string }
  | { kind: 'srv'; service: string; transport: 'udp' | 'tcp' }
  | { kind: 'empty' };

interface Records {
  answers: ResourceRecord[];
  /** Additional RRsets, each kept or dropped whole when space is short (RFC 2181 §9). */
  extra: ResourceRecord[][];
}

/** In-place Fisher–Yates shuffle. */
export function shuffle<T>(items: T[], random: () => number = Math.random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}

let lastFqdn = '';
let lastApex: string[] = [];

/** The zone's apex, as lower-case labels. Remembers the last one: every query asks for the same. */
export function zoneLabels(fqdn: string): string[] {
  if (fqdn !== lastFqdn) {
    lastApex = fqdn
      .toLowerCase()
      .split('.')
      .filter((l) => l.length > 0);
    lastFqdn = fqdn;
  }
  return lastApex;
}

/** An error response to a message that had no usable question (FORMERR, NOTIMP); no OPT, as its OPT was not read. */
export function answerReject(id: number, queryFlags: number, rcode: Rcode): DnsResponse {
  const r = emptyResponse(id, queryFlags, null, CLASSIC_UDP_SIZE);
  r.flags = responseFlags(queryFlags, rcode);
  return r;
}

/** SERVFAIL: the pool snapshot could not be read (RFC 1035 §4.1.1). */
export function answerServerFailure(query: DnsQuery, ctx: AnswerContext): DnsResponse {
  const r = emptyResponse(query.id, query.flags, query.question, sizeLimit(query, ctx));
  r.flags = responseFlags(query.flags, Rcode.servFail);
  r.opt = optRecord(query, ctx, Rcode.servFail);
  return r;
}

export function answerQuery(query: DnsQuery, view: PoolView, ctx: AnswerContext): DnsResponse {
  const q = query.question;
  const r = emptyResponse(query.id, query.flags, q, sizeLimit(query, ctx));
  const finish = (rcode: Rcode, authoritative: boolean): DnsResponse => {
    r.flags = responseFlags(query.flags, rcode) | (authoritative ? Flag.aa : 0);
    r.opt = optRecord(query, ctx, rcode);
    return r;
  };

  // RFC 6891 §6.1.3: we implement EDNS version 0 only.
  if (query.edns && query.edns.version > 0) return finish(Rcode.badVers, false);
  if (opcodeOf(query.flags) !== 0) return finish(Rcode.notImp, false);
  if (q.class !== QClass.IN && q.class !== QClass.ANY) return finish(Rcode.refused, false);

  const apex = zoneLabels(view.fqdn);
  const relative = relativeLabels(q.labels, apex);
  // RFC 1035 §4.1.1: REFUSED for names we are not authoritative for; we do not recurse.
  if (relative === null) return finish(Rcode.refused, false);
  // RFC 6891 §6.1.1: OPT is a pseudo-type, never asked for.
  if (q.type === QType.OPT) return finish(Rcode.formErr, false);
  // Zone transfers are not offered (RFC 5936 §6 lets a server refuse them).
  if (q.type === QType.AXFR || q.type === QType.IXFR) return finish(Rcode.refused, false);
  if (q.type === QType.TKEY || q.type === QType.TSIG || q.type === QType.MAILA || q.type === QType.MAILB) {
    return finish(Rcode.notImp, false);
  }

  const apexName = apex.join('.');
  const ttl = view.dnsTtl;
  const node = findNode(relative, view);
  if (node === null) {
    // RFC 2308 §3: NXDOMAIN carries the SOA, whose minimum is the negative-caching TTL.
    r.authorities.push(soaRecord(apexName, apexName, ttl, ctx));
    return finish(Rcode.nxDomain, true);
  }
  const records = recordsFor(node, q.name, q.type, view, apexName, ctx);
  if (records.answers.length === 0) {
    // RFC 2308 §2.2: NODATA is NOERROR with an empty answer and the SOA in authority.
    r.authorities.push(soaRecord(apexName, apexName, ttl, ctx));
  } else {
    r.answers = records.answers;
    r.additionals = records.extra;
  }
  return finish(Rcode.noError, true);
}

/** The labels of the name below the apex, or null when the name is outside the zone. */
function relativeLabels(labels: readonly string[], apex: readonly string[]): string[] | null {
  const extra = labels.length - apex.length;
  if (extra < 0) return null;
  for (let i = 0; i < apex.length; i++) {
    if (labels[extra + i]!.toLowerCase() !== apex[i]) return null;
  }
  return labels.slice(0, extra).map((l) => l.toLowerCase());
}

function findNode(relative: string[], view: PoolView): NodeKind | null {
  if (relative.length === 0) return { kind: 'apex' };
  if (relative.some((l) => l.includes('.'))) return null; // a dot inside a label: no name of ours
  const key = relative.join('.');
  const member = view.members.find((m) => m.id.toLowerCase() === key);
  if (member) return { kind: 'member', member };
  if (view.members.some((m) => m.services.some((s) => s.id.toLowerCase() === key))) {
    return { kind: 'service', service: key };
  }
  if (key === 'ns') return { kind: 'ns' };
  if (relative.length === 1 && (key === '_udp' || key === '_tcp')) {
    const transport = key === '_udp' ? 'udp' : 'tcp';
    const below = view.members.some((m) =>
      m.services.some((s) => s.listeners.some((l) => l.transport === transport)),
    );
    return below ? { kind: 'empty' } : null;
  }
  if (
    relative.length === 2 &&
    relative[0]!.startsWith('_') &&
    (relative[1] === '_udp' || relative[1] === '_tcp')
  ) {
    // RFC 2782: _<service>._<proto>. The name exists when the config has such a listener anywhere.
    const service = relative[0]!.slice(1);
    const transport = relative[1] === '_udp' ? 'udp' : 'tcp';
    const known = view.members.some((m) =>
      m.services.some(
        (s) => s.id.toLowerCase() === service && s.listeners.some((l) => l.transport === transport),
      ),
    );
    return known ? { kind: 'srv', service, transport } : null;
  }
  return null;
}

function recordsFor(
  node: NodeKind,
  owner: string,
  qtype: number,
  view: PoolView,
  apexName: string,
  ctx: AnswerContext,
): Records {
  const ttl = view.dnsTtl;
  const random = ctx.random ?? Math.random;
  const none: Records = { answers: [], extra: [] };
  const addresses = (list: Iterable<string>, shuffled: boolean): Records => {
    if (qtype !== QType.A && qtype !== QType.AAAA && qtype !== QType.ANY) return none;
    const answers = addressRecords(owner, list, qtype, ttl);
    return { answers: shuffled ? shuffle(answers, random) : answers, extra: [] };
  };
  const live = (): MemberView[] => view.members.filter((m) => m.agentUp);

  switch (node.kind) {
    case 'apex': {
      if (qtype === QType.SOA) return { answers: [soaRecord(owner, apexName, ttl, ctx)], extra: [] };
      if (qtype === QType.NS) {
        const target = `ns.${apexName}`;
        const glue = addressRecords(target, ctx.nsAddresses, QType.ANY, ttl);
        return { answers: [{ type: 'NS', name: owner, ttl, data: target }], extra: [glue] };
      }
      // RFC 8482: ANY gets the address records only, never the whole node.
      return addresses(
        live()
          .filter((m) => m.services[0]?.accepting === true)
          .flatMap((m) => m.addresses),
        true,
      );
    }
    case 'ns':
      return addresses(ctx.nsAddresses, false);
    case 'member':
      // SPEC §4.1: always, whatever the agent or the services do; existing sessions must find it.
      return addresses(node.member.addresses, false);
    case 'service':
      return addresses(
        live()
          .filter((m) => m.services.some((s) => s.id.toLowerCase() === node.service && s.accepting))
          .flatMap((m) => m.addresses),
        true,
      );
    case 'srv': {
      if (qtype !== QType.SRV && qtype !== QType.ANY) return none;
      const answers: ResourceRecord[] = [];
      const extra: ResourceRecord[][] = [];
      const seen = new Set<string>();
      for (const m of live()) {
        const target = `${m.id.toLowerCase()}.${apexName}`;
        let used = false;
        for (const s of m.services) {
          if (s.id.toLowerCase() !== node.service || !s.accepting) continue;
          for (const l of s.listeners) {
            // sip listeners have their own transport; tcp and http listeners always say tcp.
            if (l.transport !== node.transport || seen.has(`${target}:${l.port}`)) continue;
            seen.add(`${target}:${l.port}`);
            used = true;
            answers.push({
              type: 'SRV',
              name: owner,
              ttl,
              data: { priority: SRV_PRIORITY, weight: SRV_WEIGHT, port: l.port, target },
            });
          }
        }
        // RFC 2782: the target's addresses may ride along in the additional section.
        if (used) extra.push(addressRecords(target, m.addresses, QType.ANY, ttl));
      }
      return { answers: shuffle(answers, random), extra };
    }
    case 'empty':
      return none;
  }
}

function addressRecords(owner: string, list: Iterable<string>, qtype: number, ttl: number): ResourceRecord[] {
  const out: ResourceRecord[] = [];
  const seen = new Set<string>(); // RFC 2181 §5: no duplicate records in an RRset
  for (const address of list) {
    if (seen.has(address)) continue;
    seen.add(address);
    const bytes = addressBytes(address);
    if (bytes === null) continue;
    if (bytes.length === 4 && (qtype === QType.A || qtype === QType.ANY)) {
      out.push({ type: 'A', name: owner, ttl, data: address });
    } else if (bytes.length === 16 && (qtype === QType.AAAA || qtype === QType.ANY)) {
      out.push({ type: 'AAAA', name: owner, ttl, data: address });
    }
  }
  return out;
}

function soaRecord(owner: string, apexName: string, ttl: number, ctx: AnswerContext): ResourceRecord {
  return {
    type: 'SOA',
    name: owner,
    ttl,
    data: {
      mname: `ns.${apexName}`,
      rname: `hostmaster.${apexName}`,
      serial: ctx.serial() >>> 0,
      refresh: SOA_REFRESH,
      retry: SOA_RETRY,
      expire: SOA_EXPIRE,
      // RFC 2308 §4: the negative-caching TTL; the pool's TTL, so a resumed member reappears as fast.
      minimum: ttl,
    },
  };
}

function optRecord(query: DnsQuery, ctx: AnswerContext, rcode: number): DnsResponse['opt'] {
  if (!query.edns) return null; // RFC 6891 §7: no OPT in a response to a query without one
  // RFC 3225 §3: the DO bit is copied.
  return { udpPayloadSize: ctx.maxUdpPayload, rcode, dnssecOk: query.edns.dnssecOk };
}

function emptyResponse(
  id: number,
  queryFlags: number,
  question: DnsQuestion | null,
  maxSize: number,
): DnsResponse {
  return {
    id,
    flags: responseFlags(queryFlags, Rcode.noError),
    question: question?.wire ?? null,
    questionName: question && !question.labels.some((l) => l.includes('.')) ? question.name : null,
    answers: [],
    authorities: [],
    additionals: [],
    opt: null,
    maxSize,
  };
}

/** RFC 1035 §4.1.1: QR set, opcode and RD copied; RFC 4035 §3.2.2: CD copied. No recursion (RA clear). */
function responseFlags(queryFlags: number, rcode: number): number {
  return Flag.qr | (queryFlags & (0x7800 | Flag.rd | Flag.cd)) | (rcode & 0xf);
}

/** The largest response allowed; the writer sets TC past it (RFC 2181 §9, RFC 7766 §5). */
function sizeLimit(query: DnsQuery, ctx: AnswerContext): number {
  if (ctx.transport === 'tcp') return MAX_MESSAGE_SIZE;
  if (!query.edns) return CLASSIC_UDP_SIZE;
  // RFC 6891 §6.2.3 and §6.2.5: values below 512 mean 512; we never send more than we advertise.
  return Math.max(CLASSIC_UDP_SIZE, Math.min(query.edns.udpPayloadSize, ctx.maxUdpPayload));
}
