/**
 * `;name=value` parameters. Names are case-insensitive (RFC 3261 §7.3.1), so keys are lower-cased;
 * values are kept as written (quoted strings with their quotes); `null` is a parameter without value
 * (`lr`, `rport`).
 */
export type SipParams = Map<string, string | null>;

const tokenChar = /[A-Za-z0-9\-.!%*_+`'~]/;
const isWs = (c: string | undefined): boolean => c === ' ' || c === '\t';

/**
 * Reads `*( SEMI generic-param )` from `s` at `start` to the end of `s` (RFC 3261 §25.1: SEMI and EQUAL
 * allow whitespace on both sides; gen-value = token / host / quoted-string). A repeated name is refused:
 * two different tags or branches would make matching ambiguous.
 */
export function parseParams(s: string, start: number, fail: (why: string) => never): SipParams {
  const params: SipParams = new Map();
  let i = start;
  for (;;) {
    while (isWs(s[i])) i++;
    if (i >= s.length) return params;
    if (s[i] !== ';') fail(`unexpected ${JSON.stringify(s[i])} where a ;parameter was expected`);
    i++;
    while (isWs(s[i])) i++;
    const nameStart = i;
    while (i < s.length && tokenChar.test(s[i]!)) i++;
    const name = s.slice(nameStart, i).toLowerCase();
    if (name === '') fail('empty parameter name');
    if (params.has(name)) fail(`parameter ${name} appears twice`);
    let j = i;
    while (isWs(s[j])) j++;
    if (s[j] !== '=') {
      params.set(name, null);
      continue;
    }
    j++;
    while (isWs(s[j])) j++;
    const valueStart = j;
    if (s[j] === '"') {
      j = quotedStringEnd(s, j);
      if (j === -1) fail(`unterminated quoted value of ${name}`);
    } else {
      while (j < s.length && !isWs(s[j]) && s[j] !== ';' && s[j] !== '"' && s[j] !== ',') j++;
    }
    if (j === valueStart) fail(`parameter ${name} has an empty value`);
    params.set(name, s.slice(valueStart, j));
    i = j;
  }
}

/** Index just after the quoted-string opening at `start` (backslash escapes honoured), or -1. */
export function quotedStringEnd(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i + 1;
  }
  return -1;
}

export function formatParams(params: SipParams): string {
  let out = '';
  for (const [name, value] of params) out += value === null ? `;${name}` : `;${name}=${value}`;
  return out;
}
