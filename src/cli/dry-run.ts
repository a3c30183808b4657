import type { MemberStatus, PoolStatus } from '../control/index.ts';
import { EbbError, ExitCode } from '../core/index.ts';
import { safeText } from './safe-text.ts';

export interface DryRunLine {
  service: string;
  state: string;
  sessions: number;
  /** Members with a live agent that accept the service now, and after the command. */
  acceptingNow: number;
  acceptingAfter: number;
  minAccepting: number;
  /** The capacity guard would refuse (SPEC §5) unless forced. */
  refused: boolean;
}

/**
 * What pausing or stopping `services` of `member` would leave accepting, from the pool as it is now
 * (`--dry-run`): the capacity guard's rule (SPEC §5) applied to a snapshot. The real command checks again
 * atomically, so another operator's command in between can still change the answer.
 */
export function dryRunPlan(
  pool: PoolStatus,
  member: string,
  service: string | undefined,
  force: boolean,
): DryRunLine[] {
  const target = pool.members.find((m) => m.id === member);
  if (!target)
    throw new EbbError('EBB_NOT_FOUND', `member "${safeText(member)}" does not exist`, {
      exitCode: ExitCode.usage,
    });
  const services = service === undefined ? target.services : target.services.filter((s) => s.id === service);
  if (services.length === 0)
    throw new EbbError(
      'EBB_NOT_FOUND',
      `service "${safeText(service!)}" on member "${member}" does not exist`,
      {
        exitCode: ExitCode.usage,
      },
    );
  return services.map((s) => {
    const acceptingNow = pool.members.filter((m) => accepts(m, s.id)).length;
    const acceptingAfter = acceptingNow - (accepts(target, s.id) ? 1 : 0);
    return {
      service: s.id,
      state: s.state,
      sessions: s.sessions,
      acceptingNow,
      acceptingAfter,
      minAccepting: s.minAccepting,
      refused: !force && acceptingAfter < acceptingNow && acceptingAfter < s.minAccepting,
    };
  });
}

function accepts(member: MemberStatus, service: string): boolean {
  return member.agent === 'up' && member.services.some((s) => s.id === service && s.accepting);
}

/** `would pause fe01/echo: 3 → 2 accepting (min 1), 2 sessions to drain`. */
export function dryRunText(
  action: string,
  member: string,
  lines: readonly DryRunLine[],
  graceful = false,
): string[] {
  // A hard stop ends sessions now; a pause, drain or graceful stop lets them end.
  const fate = action === 'stop' && !graceful ? 'to end now (forced)' : 'to drain';
  return lines.map((l) => {
    const sessions = l.sessions > 0 ? `, ${l.sessions} session(s) ${fate}` : '';
    const refused = l.refused ? ': refused by the capacity guard (--force overrides, audited)' : '';
    return `would ${action} ${member}/${l.service}: ${l.acceptingNow} → ${l.acceptingAfter} accepting (min ${l.minAccepting})${sessions}${refused}`;
  });
}
