import { z } from 'zod';
import {
  Action,
  AuditAction,
  type AuditRecord,
  type CommandResult,
  type MemberStatus,
  type PoolStatus,
  type ServiceStatusView,
} from '../control/index.ts';
import { DesiredRun, ServiceState, StartupType, type ApplyError } from '../core/index.ts';

/**
 * What the API answers, for `/v1/openapi.json` (SPEC §7). The types are the TypeScript interfaces of the
 * read model and the controller; these schemas describe them, and the checks at the bottom stop the
 * build when the two drift apart (a field added, removed or retyped on one side only).
 */
const epochMs = z.number().int().describe('epoch milliseconds');
const count = z.number().int().min(0);

export const ApplyErrorSchema = z.object({
  intentRevision: z.number().int(),
  code: z.string(),
  message: z.string(),
  at: epochMs,
});

export const ServiceStatusSchema = z.object({
  id: z.string(),
  name: z.string(),
  components: z.array(z.string()),
  state: z.enum(ServiceState).describe('observed state (SPEC §2)'),
  startup: z.enum(StartupType),
  intent: z.enum(DesiredRun).describe('what the operator asked for; the agent drives `state` towards it'),
  accepting: z.boolean().describe('takes new sessions (and its agent is alive)'),
  minAccepting: count.describe("the capacity guard's minimum for this service (SPEC §5)"),
  sessions: count,
  sessionsByKind: z
    .record(z.string(), count)
    .describe('sessions by kind: tcp connections, sip dialogs, http requests and websockets'),
  idleConnections: count.describe('http: idle keep-alive connections (not sessions)'),
  flows: count.describe(
    'sip over tcp/tls/ws: client flows still open; registrations ride on them (SPEC §14)',
  ),
  drained: z.boolean(),
  forced: count.describe('sessions ended by a deadline or a hard stop since the service last started'),
  accepted: count,
  upstreamFailures: count,
  refused: count,
  drainStartedAt: epochMs
    .nullable()
    .describe(
      'when this agent process began the current drain (after a restart: the restart, since sessions start again); the pause itself is intentAt',
    ),
  drainedAt: epochMs.nullable(),
  deadlineAt: epochMs.nullable(),
  reason: z.string(),
  intentBy: z.string().describe('who set the current intent (`config`: the default from the config)'),
  intentAt: epochMs.nullable().describe('when the current intent was set; kept across restarts'),
  pending: z.boolean().describe('the agent has not applied the current intent yet (down, busy or retrying)'),
  error: z.string().nullable(),
  applyError: ApplyErrorSchema.nullable()
    .optional()
    .describe('the newest intent the agent could not apply (it keeps trying)'),
  kept: z
    .boolean()
    .optional()
    .describe(
      'a pause or stop its agent kept from its local copy because the store was wiped or replaced; resume, or pause/stop again to adopt it',
    ),
});

export const MemberStatusSchema = z.object({
  id: z.string(),
  address: z.string(),
  agent: z.enum(['up', 'down']),
  readyForOffline: z.boolean(),
  services: z.array(ServiceStatusSchema),
});

export const PoolStatusSchema = z.object({
  pool: z.object({ name: z.string(), fqdn: z.string(), minAccepting: count }),
  members: z.array(MemberStatusSchema),
});

export const ServiceChangeSchema = z.object({
  service: z.string(),
  from: z.enum(DesiredRun),
  to: z.enum(DesiredRun),
  revision: z.number().int().describe('store revision of the new intent'),
});

export const ApplyFailureSchema = z.object({ service: z.string(), code: z.string(), message: z.string() });

export const CommandResultSchema = z.object({
  action: z.enum(Action),
  member: z.string(),
  changed: z.array(ServiceChangeSchema),
  unchanged: z.array(z.object({ service: z.string(), why: z.string() })),
  applied: z
    .boolean()
    .describe("the member's agent confirmed every change (a pause: its listeners refuse new sessions)"),
  failures: z
    .array(ApplyFailureSchema)
    .describe('changes the agent reported it could not apply; the intent is stored and the agent retries'),
  forced: z.boolean().describe('the capacity guard was overridden (`force`)'),
  status: MemberStatusSchema,
});

export const AuditRecordSchema = z.object({
  id: z.string(),
  at: epochMs,
  by: z.string().describe('the token name, `local` without tokens, `anonymous` for a refused caller'),
  action: z.enum(AuditAction),
  member: z.string(),
  service: z.string().nullable(),
  reason: z.string(),
  force: z.boolean(),
  result: z
    .enum(['ok', 'refused', 'denied', 'error'])
    .describe(
      '`refused`: by the capacity guard; `denied`: by access control or the cross-site rules (SPEC §8)',
    ),
  detail: z.string(),
});

export const ReadinessSchema = z.object({
  member: z.string(),
  service: z.string(),
  accepting: z.boolean(),
  state: z.enum(ServiceState),
});

export const ErrorSchema = z.object({
  error: z.object({
    code: z
      .string()
      .describe(
        'stable: EBB_BAD_REQUEST, EBB_UNAUTHENTICATED, EBB_FORBIDDEN, EBB_BAD_HOST, EBB_FOREIGN_ORIGIN, ' +
          'EBB_NOT_JSON, EBB_NOT_FOUND, EBB_INVALID_TRANSITION, EBB_GUARD_REFUSED, EBB_TIMEOUT, ' +
          'EBB_STORE_UNAVAILABLE, EBB_INTERNAL',
      ),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

/** Every response schema by its name in `components.schemas`. */
export const responseSchemas = {
  PoolStatus: PoolStatusSchema,
  MemberStatus: MemberStatusSchema,
  ServiceStatus: ServiceStatusSchema,
  ApplyError: ApplyErrorSchema,
  CommandResult: CommandResultSchema,
  ServiceChange: ServiceChangeSchema,
  ApplyFailure: ApplyFailureSchema,
  AuditRecord: AuditRecordSchema,
  Readiness: ReadinessSchema,
  Error: ErrorSchema,
} as const;

/** True when the schema accepts every value of T and names exactly T's fields. */
type Describes<S extends z.ZodType, T> = [T] extends [z.output<S>]
  ? [Exclude<keyof T, keyof z.output<S>> | Exclude<keyof z.output<S>, keyof T>] extends [never]
    ? true
    : false
  : false;
type Holds<T extends true> = T;

/** Fails to compile when a schema above no longer describes the type the API sends. */
export type ResponseSchemasMatchTheirTypes = [
  Holds<Describes<typeof PoolStatusSchema, PoolStatus>>,
  Holds<Describes<typeof MemberStatusSchema, MemberStatus>>,
  Holds<Describes<typeof ServiceStatusSchema, ServiceStatusView>>,
  Holds<Describes<typeof ApplyErrorSchema, ApplyError>>,
  Holds<Describes<typeof CommandResultSchema, CommandResult>>,
  Holds<Describes<typeof ServiceChangeSchema, CommandResult['changed'][number]>>,
  Holds<Describes<typeof ApplyFailureSchema, CommandResult['failures'][number]>>,
  Holds<Describes<typeof AuditRecordSchema, AuditRecord>>,
];
