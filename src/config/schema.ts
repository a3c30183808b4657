import { isIP } from 'node:net';
import { z } from 'zod';
import { startupTypes } from '../core/index.ts';
import { duration, hostPort, id, port } from './fields.ts';
import { completeListener, listenerSchema, rerouteField, retryAfterField } from './listener-schema.ts';

const service = z
  .object({
    id,
    name: z.string().min(1).max(200).optional(),
    components: z.array(z.string().min(1).max(100)).max(32).default([]),
    startup: z.enum(startupTypes).default('automatic'),
    /** SPEC §3: `keep` brings a paused service back paused; `resume` is the source's default behaviour. */
    onRestart: z.enum(['keep', 'resume']).default('keep'),
    minAccepting: z.number().int().min(0).optional(),
    /** Defaults for the service's sip listeners: where these settings lived before listeners had them. */
    reroute: rerouteField.optional(),
    retryAfter: retryAfterField.optional(),
    sipMaxIdle: duration.optional(),
    listeners: z.array(listenerSchema).min(1, 'must list at least one listener'),
  })
  .strict()
  .transform(({ reroute, retryAfter, sipMaxIdle, listeners, ...service }, ctx) => {
    if (!listeners.some((l) => l.protocol === 'sip')) {
      for (const [field, value] of Object.entries({ reroute, retryAfter, sipMaxIdle })) {
        if (value !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'applies to sip listeners only',
            input: value,
          });
      }
    }
    const shared = { reroute, retryAfter, maxIdle: sipMaxIdle };
    return { ...service, listeners: listeners.map((l) => completeListener(l, shared)) };
  });

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
      .object({ listen: hostPort.default('127.0.0.1:5300') })
      .strict()
      .default({ listen: '127.0.0.1:5300' }),
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
      .object({ leaseTtl: duration.prefault('5s'), localState: z.string().min(1).default('.ebb/local') })
      .strict()
      .transform(({ leaseTtl, localState }) => ({
        leaseTtl: leaseTtl.text,
        leaseTtlMs: leaseTtl.ms,
        localState,
      }))
      .prefault({}),
    members: z.array(member).min(1, 'must list at least one member'),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type PoolConfig = z.output<typeof configSchema>;
export type MemberConfig = PoolConfig['members'][number];
export type ServiceConfig = MemberConfig['services'][number];
