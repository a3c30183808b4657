// Character classes of RFC 3261 §25.1, as functions: control characters in regular expressions trip
// the linter and are hard to read.

const tokenChars = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/** RFC 3261 token: method names, header names, parameter names. */
export function isToken(s: string): boolean {
  return tokenChars.test(s);
}

/** Controls other than HT (and DEL): never legal in a line; a bare CR or LF would inject lines. */
export function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** Characters that may never appear unescaped in a URI: whitespace, controls, `"`, `<`, `>`. */
export function hasUriForbiddenChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x22 || c === 0x3c || c === 0x3e) return true;
  }
  return false;
}
