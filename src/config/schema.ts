import { isIP } from 'node:net';
import { z } from 'zod';
import { startupTypes } from '../core/index.ts';

/** A DNS label, so ids can appear in names like `<member>.<pool.fqdn>` (RFC 1035 §2.3.1). */
const id = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be lower-case letters, digits and dashes (a DNS label)',
  );

const port = z
  .number({ error: 'must be a number' })
  .int('must be an integer')
  .min(1, 'must be 1-65535')
  .max(65535, 'must be 1-65535');

const hostPort = z.string().refine((v) => splitHostPort(v) !== null, 'must be host:port with a port 1-65535');

const upstream = z
  .string()
  .refine(
    (v) => v === 'builtin:echo' || v === 'builtin:sip-uas' || splitHostPort(v) !== null,
    'must be host:port, builtin:echo or builtin:sip-uas',
  );

const duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, 'must be a duration such as 500ms, 5s, 10m');

const listener = z
  .object({
    protocol: z.enum(['tcp', 'sip', 'http']),
    transport: z.enum(['udp', 'tcp']).optional(),
    port,
    upstream,
  })
  .strict()
  .superRefine((l, ctx) => {
    if (l.protocol !== 'sip' && l.transport === 'udp') {
      ctx.addIssue({
        code: 'custom',
        path: ['transport'],
        message: `must be tcp for protocol ${l.protocol}`,
      });
    }
    if (l.upstream === 'builtin:sip-uas' && l.protocol !== 'sip') {
      ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'builtin:sip-uas needs protocol sip' });
    }
    if (l.upstream === 'builtin:echo' && l.protocol !== 'tcp') {
      ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'builtin:echo needs protocol tcp' });
    }
  })
  .transform((l) => ({ ...l, transport: l.transport ?? (l.protocol === 'sip' ? 'udp' : 'tcp') }) as const);

const service = z
  .object({
    id,
    name: z.string().min(1).max(200).optional(),
    components: z.array(z.string().min(1).max(100)).max(32).default([]),
    startup: z.enum(startupTypes).default('automatic'),
    /** SPEC §3: `keep` brings a paused service back paused; `resume` is the source's default behaviour. */
    onRestart: z.enum(['keep', 'resume']).default('keep'),
    minAccepting: z.number().int().min(0).optional(),
    /** SPEC §4.2: how a paused sip service turns away dialog-creating requests. */
    reroute: z.enum(['reject', 'redirect']).default('reject'),
    retryAfter: z.number().int().min(0).max(86_400).default(30),
    /** sip only: a dialog with no request for this long is counted as ended, so a lost BYE cannot hold a drain. */
    sipMaxIdle: duration.optional(),
    listeners: z.array(listener).min(1, 'must list at least one listener'),
  })
  .strict();

const member = z
  .object({
    id,
    address: z.string().refine((v) => isIP(v) !== 0, 'must be an IPv4 or IPv6 address'),
    agentCheckPort: port.optional(),
    services: z.array(service).min(1, 'must list at least one service'),
  })
  .strict();

const token = z
  .object({
    name: z.string().min(1).max(100),
    role: z.enum(['viewer', 'operator', 'admin']),
    token: z
      .string()
      .regex(/^env:[A-Za-z_][A-Za-z0-9_]*$/, 'must be env:NAME (token values come from the environment)'),
  })
  .strict();

export const configSchema = z
  .object({
    pool: z
      .object({
        name: id,
        fqdn: z
          .string()
          .regex(
            /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$/i,
            'must be a DNS name',
          )
          .transform((v) => v.replace(/\.$/, '').toLowerCase()),
        minAccepting: z.number().int().min(0).default(1),
        dnsTtl: z.number().int().min(0).max(86_400).default(5),
      })
      .strict(),
    store: z
      .string()
      .regex(/^(sqlite:.+|etcd:\/\/.+)$/, 'must be sqlite:<path> or etcd://host:port[,host:port...]')
      .default('sqlite:.ebb/state.db'),
    dns: z
      .object({ listen: hostPort.default('127.0.0.1:5353') })
      .strict()
      .default({ listen: '127.0.0.1:5353' }),
    api: z
      .object({
        listen: hostPort.default('127.0.0.1:7070'),
        tokens: z.array(token).default([]),
        /** SPEC §8: names (`host` or `host:port`) the API may be reached by besides its listen address. */
        hosts: z.array(z.string().min(1).max(253)).max(64).default([]),
      })
      .strict()
      .default({ listen: '127.0.0.1:7070', tokens: [], hosts: [] }),
    agent: z
      .object({ leaseTtl: duration.default('5s'), localState: z.string().min(1).default('.ebb/local') })
      .strict()
      .default({ leaseTtl: '5s', localState: '.ebb/local' }),
    members: z.array(member).min(1, 'must list at least one member'),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type PoolConfig = z.output<typeof configSchema>;
export type MemberConfig = PoolConfig['members'][number];
export type ServiceConfig = MemberConfig['services'][number];
export type ListenerConfig = ServiceConfig['listeners'][number];

/** `127.0.0.1:80` or `[::1]:80` → host and port; null when malformed. */
export function splitHostPort(text: string): { host: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return null;
  const portNumber = Number(match[3]);
  if (portNumber < 1 || portNumber > 65535) return null;
  return { host: (match[1] ?? match[2])!, port: portNumber };
}
