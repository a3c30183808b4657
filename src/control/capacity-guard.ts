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
 * SPEC §5: a change is refused when afterwards fewer than `minAccepting` members with a live agent would
 * accept the service. A change that does not lower the count is never refused, so a pool that is already
 * short can still be mended.
 */
export function checkCapacity(input: GuardInput): GuardVerdict {
  const count = (which: 'before' | 'after') =>
    input.members.filter((m) => m.agentUp && m[which] === 'running').length;
  const acceptingBefore = count('before');
  const acceptingAfter = count('after');
  return {
    allowed: acceptingAfter >= acceptingBefore || acceptingAfter >= input.minAccepting,
    service: input.service,
    minAccepting: input.minAccepting,
    acceptingBefore,
    acceptingAfter,
  };
}
