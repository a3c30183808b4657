import { isToken } from './sip-chars.ts';
import { SipMessageKind, SIP_VERSION } from './sip-message.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';
import { isAbsoluteUri } from './sip-uri.ts';

export type StartLine =
  | { kind: typeof SipMessageKind.request; method: string; uri: string; version: string }
  | { kind: typeof SipMessageKind.response; version: string; status: number; reason: string };

const versionRe = /^SIP\/\d+\.\d+$/i;

/**
 * RFC 3261 §7.1/§7.2: `Method SP Request-URI SP SIP-Version` or `SIP-Version SP Status-Code SP Reason`.
 * Single spaces only: extra whitespace is how a Request-URI with unescaped spaces shows (RFC 4475 §3.1.2).
 */
export function parseStartLine(line: string): StartLine {
  const fail = (why: string): never => {
    throw new SipParseError(
      SipErrorCode.badStartLine,
      `start line ${JSON.stringify(line.slice(0, 100))}: ${why}`,
      {
        field: 'start-line',
      },
    );
  };
  const checkVersion = (v: string): void => {
    // The version is case-insensitive but only 2.0 exists (RFC 3261 §7.1; 505 otherwise).
    if (v.toUpperCase() !== SIP_VERSION) {
      throw new SipParseError(SipErrorCode.badVersion, `SIP version ${JSON.stringify(v)} is not supported`, {
        field: 'start-line',
      });
    }
  };

  if (/^SIP\//i.test(line)) {
    const m = /^(\S+) (\d{3})(?: (.*))?$/.exec(line);
    if (!m || !versionRe.test(m[1]!)) return fail('not a status line');
    checkVersion(m[1]!);
    const status = Number(m[2]);
    if (status < 100 || status > 699) fail(`status ${status} is out of range`);
    return { kind: SipMessageKind.response, version: SIP_VERSION, status, reason: m[3] ?? '' };
  }

  const parts = line.split(' ');
  if (parts.length !== 3) return fail('expected "METHOD Request-URI SIP/2.0"');
  // Exactly three parts (checked above).
  const [method, uri, version] = parts as [string, string, string];
  if (!isToken(method)) fail('bad method');
  if (!isAbsoluteUri(uri)) fail('bad Request-URI');
  if (!versionRe.test(version)) fail('bad SIP version');
  checkVersion(version);
  return { kind: SipMessageKind.request, method, uri, version: SIP_VERSION };
}
