import { isIPv6 } from 'node:net';

/**
 * The kernel's socket table through `ss` (sock_diag): the connections of a kernel listener are the TCP
 * sockets whose local end is the member's address and port, established or half-closed by the client
 * (close-wait: the server still holds it and may still send).
 */

/** The most sockets one query may list before the reading is refused (far above any one port's share). */
export const maxSocketLines = 1_000_000;
/** The bytes that many lines take at most, for the reader's buffer. */
export const maxSocketOutputBytes = 160 * maxSocketLines;

/** `ss` arguments that list (or with `kill`, destroy: SOCK_DESTROY) the sessions of address:port. */
export function ssArgs(address: string, port: number, kill = false): string[] {
  const local = isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
  return [
    ...(kill ? ['-K'] : []),
    '-H',
    '-t',
    '-n',
    'state',
    'established',
    'state',
    'close-wait',
    'src',
    local,
  ];
}

/**
 * The peers (`address:port` text) of the sockets in `ss -H -t -n` output, one line each: the local and
 * peer ends are the last two columns (a state column comes first when more than one state is asked
 * for). Lines that do not end in two endpoints are skipped; more than `limit` lines is an error.
 */
export function parseSockets(text: string, limit = maxSocketLines): string[] {
  if (text.length > limit * 160) throw new Error(`ss output over ${limit * 160} bytes`);
  const peers: string[] = [];
  let start = 0;
  let lines = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.trim() === '') continue;
    if (++lines > limit) throw new Error(`ss listed more than ${limit} sockets`);
    const fields = line.trim().split(/\s+/);
    if (fields.length < 2) continue;
    const local = fields[fields.length - 2]!;
    const peer = fields[fields.length - 1]!;
    if (!isEndpoint(local) || !isEndpoint(peer)) continue;
    peers.push(peer);
  }
  return peers;
}

/** `1.2.3.4:5`, `[::1]:5` or `*:5` as ss prints them (with an optional `%iface` zone). */
function isEndpoint(text: string): boolean {
  return /^(?:\[[0-9a-fA-F:.]+(?:%[\w.-]+)?\]|[0-9.]+(?:%[\w.-]+)?|\*):\d{1,5}$/.test(text);
}
