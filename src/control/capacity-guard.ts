import type { DesiredRun } from '../core/index.ts';

export interface GuardInput {
  service: string;
  minAccepting: number;
  /** Per member: is its agent alive, and does its intent say running, before and after the change. */
  members: Array<{ member: string; agentUp: boolean; before: DesiredRun; after: DesiredRun }>;
}

export interface GuardVerdict {
  allowed: boolean;
  service: string;
  minAccepting: number;
  acceptingBefore: number;
  acceptingAfter: number;
}

/**
 * SPEC §5: a change that takes a member out of accepting (its intent leaves `running`) is refused when
 * afterwards fewer than `minAccepting` members with a live agent would accept the service. Only live
 * members count as accepting afterwards; but a member whose lease lapsed may still be serving (a starved
 * agent, a network split), so taking it out is a lowering like any other and is refused in a pool that
 * would be left short (docs/lifecycle.md, "capacity guard"). A change that takes no member out (resume,
 * start, paused → stopped) is never refused, so a pool that is already short can still be mended.
 */
export function checkCapacity(input: GuardInput): GuardVerdict {
  const count = (which: 'before' | 'after') =>
    input.members.filter((m) => m.agentUp && m[which] === 'running').length;
  const acceptingBefore = count('before');
  const acceptingAfter = count('after');
  const takesOneOut = input.members.some((m) => m.before === 'running' && m.after !== 'running');
  return {
    allowed: !takesOneOut || acceptingAfter >= input.minAccepting,
    service: input.service,
    minAccepting: input.minAccepting,
    acceptingBefore,
    acceptingAfter,
  };
}
