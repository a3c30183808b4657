import { formatParams, type SipParams } from './header-params.ts';
import { hasUriForbiddenChar, isToken } from './sip-chars.ts';
import { formatHostPort, readHostPort } from './host-port.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';

export const SipUriScheme = { sip: 'sip', sips: 'sips' } as const;
export type SipUriScheme = (typeof SipUriScheme)[keyof typeof SipUriScheme];

/** A sip: or sips: URI (RFC 3261 §19.1). Escapes (`%40`) are kept as written. */
export interface SipUri {
  scheme: SipUriScheme;
  user: string | undefined;
  password: string | undefined;
  /** Host name, IPv4, or IPv6 without brackets. */
  host: string;
  port: number | undefined;
  /** uri-parameters (`lr`, `transport`, `maddr`...), names lower-cased. */
  params: SipParams;
  /** `?name=value&...` headers, in order. */
  headers: { name: string; value: string }[];
}

export function parseSipUri(s: string): SipUri {
  const fail = (why: string): never => {
    throw new SipParseError(SipErrorCode.badUri, `URI ${JSON.stringify(s.slice(0, 100))}: ${why}`, {
      field: 'uri',
    });
  };
  const colon = s.indexOf(':');
  const scheme = s.slice(0, colon).toLowerCase();
  if (colon === -1 || (scheme !== SipUriScheme.sip && scheme !== SipUriScheme.sips)) {
    fail('scheme is not sip or sips');
  }
  if (hasUriForbiddenChar(s)) fail('contains whitespace, a control character, a quote or an angle bracket');
  const rest = s.slice(colon + 1);

  // '@' may not appear unescaped in params or headers, but '?' may appear in a user part: take the
  // userinfo only when its '@' comes before any '?', which is right for every URI seen in practice.
  let user: string | undefined;
  let password: string | undefined;
  let i = 0;
  const at = rest.indexOf('@');
  const question = rest.indexOf('?');
  if (at !== -1 && (question === -1 || at < question)) {
    const userinfo = rest.slice(0, at);
    const pc = userinfo.indexOf(':');
    user = pc === -1 ? userinfo : userinfo.slice(0, pc);
    password = pc === -1 ? undefined : userinfo.slice(pc + 1);
    if (user === '') fail('empty user part');
    if (/[[\]]/.test(userinfo)) fail('brackets in the user part');
    i = at + 1;
  }

  const hp = readHostPort(rest, i, false, fail);
  i = hp.end;

  const params: SipParams = new Map();
  while (rest[i] === ';') {
    let end = i + 1;
    while (end < rest.length && rest[end] !== ';' && rest[end] !== '?') end++;
    const seg = rest.slice(i + 1, end);
    const eq = seg.indexOf('=');
    const name = (eq === -1 ? seg : seg.slice(0, eq)).toLowerCase();
    const value = eq === -1 ? null : seg.slice(eq + 1);
    if (!isToken(name)) fail(`bad parameter name ${JSON.stringify(name)}`);
    if (value === '') fail(`parameter ${name} has an empty value`);
    if (params.has(name)) fail(`parameter ${name} appears twice`);
    params.set(name, value);
    i = end;
  }

  const headers: { name: string; value: string }[] = [];
  if (rest[i] === '?') {
    for (const pair of rest.slice(i + 1).split('&')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) fail(`bad URI header ${JSON.stringify(pair)}`);
      headers.push({ name: pair.slice(0, eq), value: pair.slice(eq + 1) });
    }
  } else if (i < rest.length) {
    fail(`unexpected ${JSON.stringify(rest[i])} after the host`);
  }

  return { scheme: scheme as SipUriScheme, user, password, host: hp.host, port: hp.port, params, headers };
}

export function formatSipUri(uri: SipUri): string {
  let out = `${uri.scheme}:`;
  if (uri.user !== undefined) {
    out += uri.password === undefined ? `${uri.user}@` : `${uri.user}:${uri.password}@`;
  }
  out += formatHostPort(uri.host, uri.port) + formatParams(uri.params);
  if (uri.headers.length > 0) out += '?' + uri.headers.map((h) => `${h.name}=${h.value}`).join('&');
  return out;
}

/** RFC 3986 absolute URI shape, as a Request-URI must be (RFC 3261 §7.1); tel:, urn:... pass too. */
export function isAbsoluteUri(s: string): boolean {
  const colon = s.indexOf(':');
  return (
    colon > 0 &&
    colon < s.length - 1 &&
    /^[A-Za-z][A-Za-z0-9+.-]*$/.test(s.slice(0, colon)) &&
    !hasUriForbiddenChar(s)
  );
}
