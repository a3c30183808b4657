import { isIP } from 'node:net';
import { splitHostPort } from '../config/index.ts';
import { EbbError, ExitCode } from '../core/index.ts';

/** SPEC §8: the API binds loopback unless tokens protect it. */
export function isLoopback(host: string): boolean {
  const h = normaliseHost(host);
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/** 403: the `Host` header names something other than this API (DNS rebinding). */
export class BadHostError extends EbbError {
  constructor(message: string) {
    super('EBB_BAD_HOST', message, { httpStatus: 403, exitCode: ExitCode.unauthorised });
  }
}

/** 403: `Origin` or `Sec-Fetch-Site` says another site's page sent this request (CSRF). */
export class ForeignOriginError extends EbbError {
  constructor(message: string) {
    super('EBB_FOREIGN_ORIGIN', message, { httpStatus: 403, exitCode: ExitCode.unauthorised });
  }
}

/** 415: a state-changing request whose body is not declared as JSON is never parsed. */
export class NotJsonError extends EbbError {
  constructor(message: string) {
    super('EBB_NOT_JSON', message, { httpStatus: 415, exitCode: ExitCode.usage });
  }
}

/** `application/json`, with or without parameters (`; charset=utf-8`). */
export function declaresJson(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/** The local end of the connection a request arrived on; absent for in-process requests. */
export interface LocalAddress {
  address: string;
  port: number;
}

/** What a request's headers say about where it came from. */
export interface RequestOrigin {
  origin: string | undefined;
  secFetchSite: string | undefined;
  contentType: string | undefined;
}

interface Authority {
  host: string;
  /** null for an `api.hosts` entry without a port: that name at any port. */
  port: number | null;
}

/**
 * SPEC §8: loopback is not a trust boundary against the operator's own browser. Any page the operator
 * opens can send "simple" requests to 127.0.0.1 (a form post, a no-cors fetch with a text/plain body),
 * and a page whose name is re-pointed at 127.0.0.1 (DNS rebinding) can even read the answers. So:
 *
 * - the `Host` header must name this API: `api.listen`, or the address the connection arrived on, with
 *   its port; `localhost` at that port when it is a loopback address; or a name in `api.hosts`. A
 *   rebinding page's requests carry the attacker's name, which is none of these;
 * - a state-changing request must declare `Content-Type: application/json`, which no form can send and
 *   fetch() sends only after a CORS preflight this API never answers;
 * - and, when the browser says where it comes from, it must be from here: `Origin` must be one of the
 *   names above (http or https), and `Sec-Fetch-Site` (Fetch Metadata, set by the browser and not by the
 *   page) must be `same-origin` or `none`. `same-site` is refused too: ports do not make a site, so
 *   `http://localhost:3000` is same-site with `http://localhost:7070`.
 *
 * Clients that are not browsers (the CLI, curl, Prometheus) send no Origin and no Sec-Fetch-Site.
 */
export class RequestGuard {
  private readonly listen: { host: string; port: number } | null;
  private readonly hosts: Authority[];

  constructor(options: { listen: string; hosts: readonly string[] }) {
    const listen = splitHostPort(options.listen);
    // Even a wildcard (0.0.0.0): the CLI reaches the API at `http://<api.listen>`. An address is never
    // a rebinding, which needs a name; a page of another origin sending to it is stopped by `Origin`.
    this.listen = listen ? { host: normaliseHost(listen.host), port: listen.port } : null;
    this.hosts = options.hosts.flatMap((entry) => {
      const parsed = parseAuthority(entry, null);
      return parsed ? [parsed] : [];
    });
  }

  /** Every route but the health checks; throws BadHostError. */
  checkHost(host: string | undefined, local?: LocalAddress): void {
    if (host === undefined || host.trim() === '')
      throw new BadHostError(`Host header is missing; ${this.expected(local)} (SPEC §8)`);
    const authority = parseAuthority(host, 80);
    if (!authority || !this.allows(authority, local))
      throw new BadHostError(
        `Host ${quote(host)} is not this API's address; ${this.expected(local)} (SPEC §8: no DNS rebinding)`,
      );
  }

  /** POST, PUT, PATCH, DELETE: throws ForeignOriginError or NotJsonError. Host is checked separately. */
  checkStateChanging(request: RequestOrigin, local?: LocalAddress): void {
    if (request.origin !== undefined) {
      const origin = parseOrigin(request.origin);
      if (!origin || !this.allows(origin, local))
        throw new ForeignOriginError(
          `Origin ${quote(request.origin)} is not this API's origin; commands are taken from the API's own ` +
            'pages or from clients that send no Origin (SPEC §8: no cross-site requests)',
        );
    }
    // Fetch Metadata (W3C): the browser's own statement of the initiator's site relative to this one.
    const site = request.secFetchSite?.trim().toLowerCase();
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw new ForeignOriginError(
        `Sec-Fetch-Site ${quote(request.secFetchSite!)}: the browser says another site's page sent this ` +
          'request; commands are taken only from the same origin (SPEC §8: no cross-site requests)',
      );
    if (!declaresJson(request.contentType))
      throw new NotJsonError(
        `${request.contentType === undefined ? 'Content-Type is missing' : `Content-Type ${quote(request.contentType)} is not application/json`}; ` +
          'state-changing requests must send Content-Type: application/json (SPEC §8)',
      );
  }

  private allows(authority: Authority, local?: LocalAddress): boolean {
    const own: Array<{ host: string; port: number }> = [];
    if (local) own.push({ host: normaliseHost(local.address), port: local.port });
    if (this.listen) own.push(this.listen);
    for (const a of own) {
      if (authority.port !== a.port) continue;
      if (authority.host === a.host) return true;
      if (authority.host === 'localhost' && isLoopback(a.host)) return true;
    }
    return this.hosts.some(
      (h) => h.host === authority.host && (h.port === null || h.port === authority.port),
    );
  }

  private expected(local?: LocalAddress): string {
    const address = local ? formatAuthority(normaliseHost(local.address), local.port) : null;
    const listen = this.listen ? formatAuthority(this.listen.host, this.listen.port) : null;
    const names = [...new Set([address, listen].filter((a): a is string => a !== null))];
    return `use ${names.join(' or ') || 'the API address'}, localhost on loopback, or a name listed in api.hosts`;
  }
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, lower-cased; null when it is none of these. */
function parseAuthority(text: string, defaultPort: number | null): Authority | null {
  const value = text.trim().toLowerCase();
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]/@\s]+))(?::(\d{1,5}))?$/.exec(value);
  if (!match) return null;
  const host = match[1] ?? match[2]!;
  if (match[1] !== undefined && isIP(host) !== 6) return null;
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port !== null && (port < 1 || port > 65535)) return null;
  return { host: normaliseHost(host), port };
}

/** An `Origin` value (RFC 6454 §7): scheme://host[:port], nothing else; `null` is no origin. */
function parseOrigin(text: string): Authority | null {
  const match = /^(https?):\/\/([^/?#]+)$/i.exec(text.trim());
  if (!match) return null;
  return parseAuthority(match[2]!, match[1]!.toLowerCase() === 'https' ? 443 : 80);
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is `127.0.0.1`. */
function normaliseHost(host: string): string {
  const lower = host.toLowerCase().replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped ? mapped[1]! : lower;
}

function formatAuthority(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** A header value in a message: quoted, escaped, and short (it is the caller's text). */
function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}
