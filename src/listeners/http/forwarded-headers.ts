import { isIPv6 } from 'node:net';

/** What the front end knows about the hop it received a request on. */
export interface HopInfo {
  /** The client's address as the socket reports it (`::ffff:` mapped IPv4 addresses are unwrapped). */
  clientAddress: string | undefined;
  /** `https` when the client connected with TLS. */
  proto: 'http' | 'https';
  /** The request's authority (Host, or HTTP/2 `:authority`), if any. */
  host: string | undefined;
}

/** `::ffff:192.0.2.1` → `192.0.2.1`: the address the client used, as it would write it. */
export function clientAddressOf(remote: string | undefined): string | undefined {
  return remote?.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

/** RFC 9110 §5.6.2 `token`: a value made only of these needs no quotes. */
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 7239 §4: a value is a token or a quoted-string (RFC 9110 §5.6.4). */
function forwardedValue(value: string): string {
  return token.test(value) ? value : `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * This hop's `Forwarded` element (RFC 7239 §4): `for=192.0.2.60;host=example.com;proto=http`. An IPv6
 * address is bracketed and so quoted (§6); an unknown client is `for=unknown` (§6.2).
 */
export function forwardedElement(hop: HopInfo): string {
  const node =
    hop.clientAddress === undefined
      ? 'unknown'
      : isIPv6(hop.clientAddress)
        ? `[${hop.clientAddress}]`
        : hop.clientAddress;
  const parts = [`for=${forwardedValue(node)}`];
  if (hop.host !== undefined && hop.host !== '') parts.push(`host=${forwardedValue(hop.host)}`);
  parts.push(`proto=${hop.proto}`);
  return parts.join(';');
}

/**
 * Appends this hop to the forwarding fields a request already carries: `X-Forwarded-For` and
 * `Forwarded` (RFC 7239 §7.1: each proxy appends its element) keep what earlier hops wrote, so an
 * upstream that trusts the last N hops can pick the right one; `X-Forwarded-Proto` is this hop's own
 * scheme (what the upstream needs to build its URLs) and replaces any the client sent.
 */
export function appendForwarding(
  out: string[],
  hop: HopInfo,
  priorFor: string | undefined,
  priorForwarded: string | undefined,
): void {
  const client = hop.clientAddress ?? 'unknown';
  out.push('x-forwarded-for', priorFor === undefined ? client : `${priorFor}, ${client}`);
  out.push('x-forwarded-proto', hop.proto);
  const element = forwardedElement(hop);
  out.push('forwarded', priorForwarded === undefined ? element : `${priorForwarded}, ${element}`);
}
