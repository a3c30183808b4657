import { z } from 'zod';
import { durationMs, startupTypes } from '../core/index.ts';

/** The one duration grammar of config, CLI and API (src/core/duration.ts): `500ms`, `30s`, `10m`, `2h`, `1d`, or seconds. */
const duration = z.string().refine((v) => durationMs(v) !== null, 'must be a duration such as 30s, 10m, 2h');
export const serviceId = z.string().regex(/^[a-z0-9-]{1,63}$/, 'must be a service id');
/**
 * A reason is printed to other operators' terminals (`ebb audit`, `ebb status`) and shown in the console:
 * C0 controls (newline, tab, ESC of an ANSI sequence…), DEL and C1 controls are refused, not stored.
 */
const reason = z
  .string()
  .max(500, 'must be at most 500 characters')
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'must not contain control characters (newline, tab, escape…)');

/** Request bodies of the state-changing endpoints; anything else is a 400 naming the field (SPEC §8). */
export const commandBodies = {
  pause: z
    .object({
      service: serviceId.optional(),
      reason: reason.optional(),
      deadline: duration.optional(),
      force: z.boolean().optional(),
    })
    .strict(),
  resume: z.object({ service: serviceId.optional(), reason: reason.optional() }).strict(),
  start: z.object({ service: serviceId.optional(), reason: reason.optional() }).strict(),
  stop: z
    .object({
      service: serviceId.optional(),
      reason: reason.optional(),
      graceful: z.boolean().optional(),
      deadline: duration.optional(),
      force: z.boolean().optional(),
    })
    .strict(),
  startup: z
    .object({ service: serviceId, startup: z.enum(startupTypes), reason: reason.optional() })
    .strict(),
  /** A pause of every service of the member, audited as `drain` (the caller waits for ready-for-offline). */
  drain: z
    .object({ reason: reason.optional(), deadline: duration.optional(), force: z.boolean().optional() })
    .strict(),
} as const;

export type CommandName = keyof typeof commandBodies;
export const commandNames = Object.keys(commandBodies) as CommandName[];
