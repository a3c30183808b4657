import { isIPv6 } from 'node:net';

/**
 * The nftables text Ebb writes and the listings it reads back (SPEC §12). Ebb owns one table per pool,
 * `inet ebb_<pool>` (dashes become underscores; pool ids are DNS labels, so the mapping is one-to-one),
 * and in it one base chain per member, `m_<member>`, hooked at input: each agent process rewrites only
 * the chains of the members it runs, so two agents of one pool on one machine never undo each other.
 */
export const ruleChainPriority = -10;

/** The most a listing may hold before it is refused unread (a chain of ours has one rule per listener). */
export const maxListingBytes = 4 << 20;

/** One refusal: new TCP connections to `address:port`, for the service that owns it. */
export interface RefusalRule {
  service: string;
  address: string;
  port: number;
}

export function tableName(pool: string): string {
  return `ebb_${pool.replaceAll('-', '_')}`;
}

export function chainName(member: string): string {
  return `m_${member.replaceAll('-', '_')}`;
}

/** The key a rule is known by: its address and port (a comment on the rule carries it). */
export function ruleKey(address: string, port: number): string {
  return `${address} ${port}`;
}

/**
 * One atomic transaction (`nft -f`) that makes the member's chain hold exactly `rules`: the chain is
 * created if missing and flushed in the same transaction, so no packet sees a half-written chain. With
 * no rules the chain is removed, so a member whose services all run has nothing in the data path.
 */
export function chainScript(pool: string, member: string, rules: readonly RefusalRule[]): string {
  const table = `inet ${tableName(pool)}`;
  const chain = `${table} ${chainName(member)}`;
  const lines = [
    `add table ${table}`,
    `add chain ${chain} { type filter hook input priority ${ruleChainPriority}; policy accept; }`,
    `flush chain ${chain}`,
  ];
  if (rules.length === 0) {
    lines.push(`delete chain ${chain}`);
    return `${lines.join('\n')}\n`;
  }
  for (const rule of rules) {
    const family = isIPv6(rule.address) ? 'ip6' : 'ip';
    // SYN without ACK: only a new connection's first segment, so a live connection that conntrack never
    // saw (one older than the rule, or after a conntrack flush) is never touched.
    lines.push(
      `add rule ${chain} ${family} daddr ${rule.address} tcp dport ${rule.port} ` +
        `tcp flags & (syn | ack) == syn counter reject with tcp reset ` +
        `comment "ebb ${rule.service} ${ruleKey(rule.address, rule.port)}"`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** What a member's chain holds, as read back from `nft -j list chain`: rule keys and refused counts. */
export interface ChainListing {
  keys: Set<string>;
  /** Packets each rule rejected (its counter), by key. */
  refused: Map<string, number>;
}

/**
 * Reads `nft -j list chain …` output: the keys of the rules Ebb wrote in that chain (by their comment).
 * Rules without Ebb's comment are ignored. Refuses input over `maxListingBytes` or that is not the
 * listing's shape, with an error naming what was wrong.
 */
export function parseChainListing(json: string, chain: string): ChainListing {
  if (json.length > maxListingBytes) throw new Error(`nft listing over ${maxListingBytes} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new Error('nft listing is not JSON');
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) throw new Error('nft listing has no nftables array');
  const listing: ChainListing = { keys: new Set(), refused: new Map() };
  for (const item of items) {
    const rule = (item as { rule?: unknown } | null)?.rule as
      { chain?: unknown; comment?: unknown; expr?: unknown } | undefined;
    if (!rule || typeof rule !== 'object' || rule.chain !== chain) continue;
    const match = typeof rule.comment === 'string' ? /^ebb \S+ (\S+ \d{1,5})$/.exec(rule.comment) : null;
    if (!match) continue;
    const key = match[1]!;
    listing.keys.add(key);
    listing.refused.set(key, counterOf(rule.expr));
  }
  return listing;
}

function counterOf(expr: unknown): number {
  if (!Array.isArray(expr)) return 0;
  for (const e of expr) {
    const packets = (e as { counter?: { packets?: unknown } } | null)?.counter?.packets;
    if (typeof packets === 'number' && Number.isSafeInteger(packets) && packets >= 0) return packets;
  }
  return 0;
}
