import { formatParams, parseParams, type SipParams } from './header-params.ts';
import { hasControlChar, isToken } from './sip-chars.ts';
import { formatHostPort, readHostPort } from './host-port.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';

/** One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=...;received=...;rport`. */
export interface Via {
  protocol: string;
  version: string;
  /** Upper-cased: UDP, TCP, TLS, SCTP, WS, WSS. */
  transport: string;
  /** Host name, IPv4, or IPv6 without brackets. */
  host: string;
  port: number | undefined;
  /**
   * `branch`, `received`, `maddr`, `ttl`, and `rport` (RFC 3581), which is `null` when sent without a
   * value (the client asks for it to be filled in) and a port string once filled.
   */
  params: SipParams;
}

const isWs = (c: string | undefined): boolean => c === ' ' || c === '\t';

/** Parses one Via value; split a line with several first (`getHeaderValues(msg, 'via')`). */
export function parseVia(value: string): Via {
  const fail = (why: string): never => {
    throw new SipParseError(SipErrorCode.badVia, `Via ${JSON.stringify(value.slice(0, 100))}: ${why}`, {
      field: 'Via',
    });
  };
  if (hasControlChar(value)) fail('contains a control character');
  const s = value.trim();
  // sent-protocol = name SLASH version SLASH transport, and SLASH = SWS "/" SWS (RFC 3261 §25.1).
  const parts: string[] = [];
  let i = 0;
  for (let k = 0; k < 3; k++) {
    if (k > 0) {
      while (isWs(s[i])) i++;
      if (s[i] !== '/') fail('bad sent-protocol');
      i++;
      while (isWs(s[i])) i++;
    }
    const start = i;
    while (i < s.length && !isWs(s[i]) && s[i] !== '/' && s[i] !== ';') i++;
    const part = s.slice(start, i);
    if (!isToken(part)) fail('bad sent-protocol');
    parts.push(part);
  }
  if (!isWs(s[i])) fail('missing sent-by');
  while (isWs(s[i])) i++;
  const hp = readHostPort(s, i, true, fail);
  const params = parseParams(s, hp.end, fail);
  // RFC 3261 §20.42: only rport (RFC 3581) may appear without a value.
  for (const name of ['branch', 'received', 'maddr', 'ttl'])
    if (params.get(name) === null) fail(`${name} needs a value`);
  return {
    protocol: parts[0]!.toUpperCase(),
    version: parts[1]!,
    transport: parts[2]!.toUpperCase(),
    host: hp.host,
    port: hp.port,
    params,
  };
}

export function formatVia(via: Via): string {
  return `${via.protocol}/${via.version}/${via.transport} ${formatHostPort(via.host, via.port)}${formatParams(via.params)}`;
}
