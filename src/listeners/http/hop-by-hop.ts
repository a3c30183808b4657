/**
 * Header fields that describe one connection and must not be forwarded (RFC 9110 §7.6.1): `Connection`
 * itself, every field it names, and the ones a proxy knows to be hop-by-hop even when unnamed —
 * `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding` (each hop frames the body itself,
 * RFC 9112 §6.1) and `Upgrade` (RFC 9110 §7.8; a tunnel sets it again towards the upstream).
 */
const alwaysHopByHop: ReadonlySet<string> = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'upgrade',
]);

/** The lower-case field names listed in `Connection` values (RFC 9110 §7.6.1: a comma-separated list). */
export function connectionOptions(values: ReadonlyArray<string>): Set<string> {
  const names = new Set<string>();
  for (const value of values) {
    for (const part of value.split(',')) {
      const name = part.trim().toLowerCase();
      if (name !== '') names.add(name);
    }
  }
  return names;
}

/** Whether a lower-case field name is hop-by-hop, given the names the message's `Connection` listed. */
export function isHopByHop(name: string, listed: ReadonlySet<string>): boolean {
  return alwaysHopByHop.has(name) || (listed.size > 0 && listed.has(name));
}

/** The same for a response's headers as undici reports them (lower-case names, arrays for repeats). */
export function endToEndHeaders(
  headers: Record<string, string | string[] | undefined>,
): Array<[name: string, value: string | string[]]> {
  const connection = headers['connection'];
  const listed = connectionOptions(
    connection === undefined ? [] : Array.isArray(connection) ? connection : [connection],
  );
  const out: Array<[string, string | string[]]> = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name, listed)) continue;
    out.push([name, value]);
  }
  return out;
}
