import { isIPv4, isIPv6 } from 'node:net';

const cache = new Map<string, Buffer | null>();
/** Addresses come from the pool config, so the cache stays small; the cap only guards against misuse. */
const CACHE_LIMIT = 4096;

/**
 * The 4 (IPv4) or 16 (IPv6) network-order bytes of an address, or null when it is not a plain IP
 * address (a scope id such as `%eth0` included). Cached: answers are built per query, addresses rarely change.
 */
export function addressBytes(address: string): Buffer | null {
  let bytes = cache.get(address);
  if (bytes !== undefined) return bytes;
  bytes = isIPv4(address) ? ipv4(address) : isIPv6(address) && !address.includes('%') ? ipv6(address) : null;
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(address, bytes);
  return bytes;
}

function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** Input already passed isIPv6: groups of hex, at most one `::`, maybe a dotted IPv4 tail (RFC 4291 §2.2). */
function ipv6(address: string): Buffer {
  const out = Buffer.alloc(16);
  const [head = '', tail] = address.split('::');
  const groups = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((g) => {
      if (!g.includes('.')) return [parseInt(g, 16)];
      const v4 = ipv4(g);
      return [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    });
  };
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  front.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  back.forEach((g, i) => out.writeUInt16BE(g, 16 - (back.length - i) * 2));
  return out;
}
