import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { startupTypes } from '../core/index.ts';
import { duration, hostPort, id, port } from './fields.ts';
import {
  anyListenerSchema,
  completeListener,
  isEmbeddedListener,
  rerouteField,
  retryAfterField,
} from './listener-schema.ts';

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
    listeners: z.array(anyListenerSchema).min(1, 'must list at least one listener'),
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
    // One process runs a service: its agent (proxy listeners) or the server embedding Ebb (SPEC §12).
    if (listeners.some(isEmbeddedListener) && !listeners.every(isEmbeddedListener))
      ctx.addIssue({
        code: 'custom',
        path: ['listeners'],
        message: 'mode embedded must be on every listener of the service or on none',
        input: listeners,
      });
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

/**
 * The shortest agent lease that is safe on etcd (issue 16, fault 3). A keepalive goes every TTL/4 and one
 * that a frozen or cut-off member does not answer within TTL/4 is resent to another member, so the
 * renewal can land TTL/2 after the last one; what is left must cover an election and a stall of the
 * agent's own event loop (GC, a starved CPU): 1 s with a 2 s lease (a chaos run with 2 s announced live
 * agents down under etcd faults), 1.5 s with 3 s. SQLite leases live on the same machine, renewed every 200 ms.
 */
export const minimumEtcdLeaseTtlMs = 3000;
const etcdLeaseTtlTooShort =
  'must be at least 3s with an etcd store: a renewal may land half a TTL late when an etcd member ' +
  'stops answering, and a shorter lease leaves too little for an election or a stall of the agent, ' +
  'so live agents would be announced down';

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
      .object({
        listen: hostPort.default('127.0.0.1:5300'),
        /** Threads answering on the port (SO_REUSEPORT); 1 answers on the process's own thread. */
        workers: z.number().int().min(1).max(8).default(1),
      })
      .strict()
      .prefault({}),
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
      .object({
        leaseTtl: duration.prefault('5s'),
        localState: z.string().min(1).default('.ebb/local'),
        /**
         * Threads serving each tcp, http and sip proxy listener to a host:port (SPEC §13); 1: the agent's
         * own. Default: one per CPU, at most 8.
         */
        workers: z
          .number()
          .int()
          .min(1)
          .max(8)
          .default(() => defaultWorkers()),
      })
      .strict()
      .transform(({ leaseTtl, localState, workers }) => ({
        leaseTtl: leaseTtl.text,
        leaseTtlMs: leaseTtl.ms,
        localState,
        workers,
      }))
      .prefault({}),
    members: z.array(member).min(1, 'must list at least one member'),
  })
  .strict()
  .superRefine(({ store, agent }, ctx) => {
    if (store.startsWith('etcd://') && agent.leaseTtlMs < minimumEtcdLeaseTtlMs) {
      ctx.addIssue({ code: 'custom', path: ['agent', 'leaseTtl'], message: etcdLeaseTtlTooShort });
    }
  });

export type ConfigInput = z.input<typeof configSchema>;
export type PoolConfig = z.output<typeof configSchema>;
export type MemberConfig = PoolConfig['members'][number];
export type ServiceConfig = MemberConfig['services'][number];

/** SPEC §13: `agent.workers` defaults to the CPUs this process may use, at most 8. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}
