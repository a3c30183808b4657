import { z } from 'zod';
import { durationMs } from '../core/index.ts';

/** A DNS label, so ids can appear in names like `<member>.<pool.fqdn>` (RFC 1035 §2.3.1). */
export const id = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be lower-case letters, digits and dashes (a DNS label)',
  );

export const port = z
  .number({ error: 'must be a number' })
  .int('must be an integer')
  .min(1, 'must be 1-65535')
  .max(65535, 'must be 1-65535');

export const hostPort = z
  .string()
  .refine((v) => splitHostPort(v) !== null, 'must be host:port with a port 1-65535');

/** `127.0.0.1:80` or `[::1]:80` → host and port; null when malformed. */
export function splitHostPort(text: string): { host: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return null;
  const portNumber = Number(match[3]);
  if (portNumber < 1 || portNumber > 65535) return null;
  return { host: (match[1] ?? match[2])!, port: portNumber };
}

/** A duration as written (`5s`, or YAML's number `5`) and what it means. */
export interface DurationValue {
  text: string;
  ms: number;
}

/**
 * A duration in core's grammar (`durationPattern`: what `parseDuration` takes from the CLI and the API);
 * a bare number, as YAML gives for `leaseTtl: 5`, is seconds. Objects holding one spread it into `x`
 * (as written) and `xMs`.
 */
export const duration = z
  .union([z.string(), z.number()], { error: 'must be a duration such as 500ms, 5s, 10m' })
  .transform((value, ctx): DurationValue => {
    const text = String(value);
    const ms = durationMs(text);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 500ms, 5s, 10m', input: value });
      return z.NEVER;
    }
    return { text, ms };
  });

/** The demo backends built into Ebb (SPEC §7, §10), each speaking one listener protocol. */
export const builtinUpstreams = { echo: 'tcp', 'sip-uas': 'sip', web: 'http' } as const;
export type BuiltinUpstream = keyof typeof builtinUpstreams;

export interface AddressTarget {
  kind: 'address';
  host: string;
  port: number;
}

export interface BuiltinTarget<N extends BuiltinUpstream = BuiltinUpstream> {
  kind: 'builtin';
  name: N;
}

/** What a listener's `upstream` names: a server to connect to, or a built-in backend. */
export type UpstreamTarget<N extends BuiltinUpstream = BuiltinUpstream> = AddressTarget | BuiltinTarget<N>;

/** `upstream` of a listener whose protocol's built-in backend is `own`: the text and its target. */
export function upstreamField<N extends BuiltinUpstream>(own: N) {
  return z.string().transform((text, ctx): { text: string; target: UpstreamTarget<N> } => {
    const address = splitHostPort(text);
    if (address) return { text, target: { kind: 'address', ...address } };
    if (text === `builtin:${own}`) return { text, target: { kind: 'builtin', name: own } };
    const other = Object.entries(builtinUpstreams).find(([name]) => text === `builtin:${name}`);
    ctx.addIssue({
      code: 'custom',
      input: text,
      message: other
        ? `${text} needs protocol ${other[1]}`
        : `must be host:port (a port 1-65535) or builtin:${own}`,
    });
    return z.NEVER;
  });
}
