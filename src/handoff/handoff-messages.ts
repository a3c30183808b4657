import { z } from 'zod';

/**
 * What the two processes of a hand-off say to each other (SPEC §13, `docs/handoff.md`), one JSON object
 * per line over the control socket. The new process ("successor") speaks first:
 *
 * ```
 *  successor                                   predecessor (the running process)
 *  hello ───────────────────────────────────▶  holds its confirmations (a pause waits for the successor)
 *        ◀─────────────────────────────────── hello { pid, members }
 *  (binds beside it, boots from the stored intents)
 *  yield { timeoutMs } ─────────────────────▶  stops accepting: listeners, API, DNS, agent-check
 *        ◀─────────────────────────────────── yielded { services }   (its live sessions)
 *  (takes the member's lease over, confirms, writes status with both processes' sessions)
 *        ◀─────────────────────────────────── sessions { services }  (on every change)
 *  end-sessions { id, member, service } ────▶  (a deadline or stop on the successor's side)
 *  note { member, service, listener, note } ▶  (an in-dialog SIP request for one of its calls reached
 *                                               the successor; the predecessor counts it)
 *        ◀─────────────────────────────────── ended { id, count }
 *        ◀─────────────────────────────────── done { ended, forced }  (then it exits)
 * ```
 *
 * A successor that is replaced in turn exits once its own sessions have ended; its predecessor, still
 * serving, then connects to whoever holds the control socket and says `adopt { pid, members }`, and goes
 * on from `sessions` with that process.
 */

/** Counters are since `yielded`; `sessions`, `byKind`, `idleConnections` and `flows` are now. */
const stats = z
  .object({
    sessions: z.number().int().min(0),
    byKind: z.record(z.string().max(64), z.number().int().min(0)),
    accepted: z.number().int().min(0),
    refused: z.number().int().min(0),
    forced: z.number().int().min(0),
    upstreamFailures: z.number().int().min(0),
    idleConnections: z.number().int().min(0),
    flows: z.number().int().min(0).optional(),
    acceptErrors: z.number().int().min(0),
  })
  .strict();

const name = z.string().min(1).max(253);
/** `ListenerNote` (src/listeners/listener.ts): a request inside a SIP dialog the sender does not track. */
const note = z
  .object({
    kind: z.literal('sip-dialog'),
    callId: z.string().min(1).max(1024),
    fromTag: z.string().max(1024),
    toTag: z.string().max(1024),
    cseq: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32),
    event: z.enum(['ack', 'active', 'ended']),
  })
  .strict();
/** A note for listener `listener` (its index in the service's config) of one service. */
const noteFor = z
  .object({
    type: z.literal('note'),
    member: name,
    service: name,
    listener: z.number().int().min(0).max(1000),
    note,
  })
  .strict();
const serviceCount = z.object({ member: name, service: name, stats }).strict();
const services = z.array(serviceCount).max(100_000);

export const SuccessorMessage = z.discriminatedUnion('type', [
  z
    .object({ type: z.literal('hello'), pid: z.number().int().positive(), version: z.string().max(64) })
    .strict(),
  z
    .object({
      type: z.literal('yield'),
      timeoutMs: z
        .number()
        .int()
        .min(0)
        .max(30 * 86_400_000),
    })
    .strict(),
  z
    .object({ type: z.literal('end-sessions'), id: z.number().int().min(0), member: name, service: name })
    .strict(),
  noteFor,
  // Not from a successor: a predecessor whose successor exited before it finished, re-attaching to the
  // process that holds the control socket now; from here on it speaks as a predecessor.
  z
    .object({
      type: z.literal('adopt'),
      pid: z.number().int().positive(),
      members: z.array(name).max(100_000),
    })
    .strict(),
]);
export type SuccessorMessage = z.infer<typeof SuccessorMessage>;

export const PredecessorMessage = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('hello'),
      pid: z.number().int().positive(),
      members: z.array(name).max(100_000),
    })
    .strict(),
  z.object({ type: z.literal('yielded'), services }).strict(),
  z.object({ type: z.literal('sessions'), services }).strict(),
  z
    .object({ type: z.literal('ended'), id: z.number().int().min(0), count: z.number().int().min(0) })
    .strict(),
  z
    .object({ type: z.literal('done'), ended: z.number().int().min(0), forced: z.number().int().min(0) })
    .strict(),
  z.object({ type: z.literal('refused'), reason: z.string().max(500) }).strict(),
]);
export type PredecessorMessage = z.infer<typeof PredecessorMessage>;
export type ServiceCount = z.infer<typeof serviceCount>;
export type NoteMessage = z.infer<typeof noteFor>;
export type AdoptMessage = Extract<SuccessorMessage, { type: 'adopt' }>;
