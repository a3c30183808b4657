import { formatParams, parseParams, quotedStringEnd, type SipParams } from './header-params.ts';
import { hasControlChar } from './sip-chars.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';
import { isAbsoluteUri } from './sip-uri.ts';

/** From, To, Contact, Route, Record-Route, Refer-To... value: `["Name"] <uri>;params` or `uri;params`. */
export interface NameAddr {
  /** Unquoted and unescaped; `undefined` when absent, `''` for `""`. */
  displayName: string | undefined;
  /** As written, without the angle brackets; `parseSipUri` reads sip: and sips: ones. */
  uri: string;
  /** Header parameters (`tag`, `expires`, `q`...), not URI parameters. */
  params: SipParams;
}

const isWs = (c: string | undefined): boolean => c === ' ' || c === '\t';

/**
 * RFC 3261 §20.10/§25.1. A wildcard Contact (`*`) is not a name-addr: check for it first. `field` names
 * the header in errors.
 */
export function parseNameAddr(value: string, field = 'name-addr'): NameAddr {
  const fail = (why: string): never => {
    throw new SipParseError(SipErrorCode.badNameAddr, `${field}: ${why}`, { field });
  };
  if (hasControlChar(value)) fail('contains a control character');
  const s = value.trim();
  let i = 0;
  let displayName: string | undefined;
  if (s[0] === '"') {
    const end = quotedStringEnd(s, 0);
    if (end === -1) fail('unterminated quoted display name');
    displayName = s.slice(1, end - 1).replace(/\\(.)/g, '$1');
    i = end;
    while (isWs(s[i])) i++;
    if (s[i] !== '<') fail('a quoted display name must be followed by <URI>');
  } else {
    const lt = s.indexOf('<');
    if (lt !== -1) {
      const dn = s.slice(0, lt).trim();
      // Unquoted display names are tokens separated by whitespace; UTF-8 is tolerated as seen in the wild.
      if (/["<>;,@:\\]/.test(dn)) fail(`display name ${JSON.stringify(dn)} must be quoted`);
      displayName = dn === '' ? undefined : dn.replace(/\s+/g, ' ');
      i = lt;
    }
  }

  let uri: string;
  if (s[i] === '<') {
    const gt = s.indexOf('>', i);
    if (gt === -1) fail('missing > after the URI');
    uri = s.slice(i + 1, gt);
    i = gt + 1;
  } else {
    // addr-spec form: any ;params that follow belong to the header, not to the URI (RFC 3261 §20.10).
    let j = i;
    while (j < s.length && s[j] !== ';' && !isWs(s[j])) j++;
    uri = s.slice(i, j);
    i = j;
  }
  if (!isAbsoluteUri(uri)) fail(`bad URI ${JSON.stringify(uri.slice(0, 100))}`);
  return { displayName, uri, params: parseParams(s, i, fail) };
}

/** Always the `<uri>` form, which is valid for every URI. */
export function formatNameAddr(na: NameAddr): string {
  const dn = na.displayName === undefined ? '' : `"${na.displayName.replace(/[\\"]/g, '\\$&')}" `;
  return `${dn}<${na.uri}>${formatParams(na.params)}`;
}
