export interface HostPort {
  /** A host name, IPv4 address, or IPv6 address without its brackets. */
  host: string;
  port: number | undefined;
  /** Index just after what was read. */
  end: number;
}

const hostChar = /[A-Za-z0-9.\-_]/;
const ipv6Re = /^[0-9A-Fa-f:.]+$/;

/**
 * Reads `host [":" port]` (RFC 3261 §25.1 hostport) at `start`. Via allows whitespace around the colon
 * (`COLON = SWS ":" SWS`), URIs do not. Underscores are tolerated in names: they occur in the wild.
 */
export function readHostPort(
  s: string,
  start: number,
  allowWs: boolean,
  fail: (why: string) => never,
): HostPort {
  let i = start;
  let host: string;
  if (s[i] === '[') {
    const close = s.indexOf(']', i);
    if (close === -1) fail('unterminated IPv6 reference');
    host = s.slice(i + 1, close);
    if (!ipv6Re.test(host) || !host.includes(':')) fail(`bad IPv6 address ${JSON.stringify(host)}`);
    i = close + 1;
  } else {
    while (i < s.length && hostChar.test(s[i]!)) i++;
    host = s.slice(start, i);
    if (host === '') fail('missing host');
  }
  let j = i;
  if (allowWs) while (s[j] === ' ' || s[j] === '\t') j++;
  if (s[j] !== ':') return { host, port: undefined, end: i };
  j++;
  if (allowWs) while (s[j] === ' ' || s[j] === '\t') j++;
  const portStart = j;
  while (j < s.length && s[j]! >= '0' && s[j]! <= '9') j++;
  const digits = s.slice(portStart, j);
  if (digits === '' || digits.length > 5 || Number(digits) > 65535)
    fail(`bad port ${JSON.stringify(digits)}`);
  return { host, port: Number(digits), end: j };
}

export function formatHostPort(host: string, port: number | undefined): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}
