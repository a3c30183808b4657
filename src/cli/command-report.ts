import type { CommandResult, MemberStatus } from '../control/index.ts';
import { safeText } from './safe-text.ts';

type ServiceView = MemberStatus['services'][number];

/** What the operator asked, beside the API's answer: what a change means depends on it. */
export interface CommandAsked {
  action: string;
  graceful?: boolean;
  startup?: string;
}

/** `1 session`, `2 sessions`. */
export function sessions(n: number): string {
  return `${n} session${n === 1 ? '' : 's'}`;
}

/**
 * Sessions forced since `before` (the member as it was just before the command): the status counts
 * `forced` since the service last started, so a drain after an earlier deadline would otherwise report
 * that deadline's sessions again.
 */
export function forcedSince(before: MemberStatus | null, after: readonly ServiceView[]): number {
  return after.reduce((sum, s) => {
    const earlier = before?.services.find((b) => b.id === s.id)?.forced ?? 0;
    return sum + Math.max(0, s.forced - earlier);
  }, 0);
}

/**
 * One line per service the command touched, saying what is true now rather than what was asked:
 * `fe01/echo: running → stopping (1 session left)`, `fe01/echo: running → stopped (2 session(s) ended
 * (forced))`, `fe03/call-park: startup automatic → manual`.
 */
export function commandLines(
  result: CommandResult,
  before: MemberStatus | null,
  asked: CommandAsked,
): string[] {
  const failed = new Set(result.failures.map((f) => f.service));
  const lines = result.changed.map((c) => {
    const target = `${result.member}/${c.service}`;
    const now = result.status.services.find((s) => s.id === c.service);
    const was = before?.services.find((s) => s.id === c.service);
    if (asked.action === 'startup') {
      const to = asked.startup ?? now?.startup ?? '?';
      const change = was ? `startup ${was.startup} → ${to}` : `startup now ${to}`;
      return `${target}: ${change}${failed.has(c.service) ? ' (not applied)' : ''}`;
    }
    if (failed.has(c.service)) return `${target}: ${c.from} → ${c.to} (not applied)`;
    if (!result.applied || !now) return `${target}: ${c.from} → ${c.to} (not confirmed yet)`;
    return `${target}: ${c.from} → ${now.state}${stateNote(now, was, asked)}`;
  });
  for (const u of result.unchanged) lines.push(`${result.member}/${u.service}: unchanged, ${u.why}`);
  return lines.map(safeText);
}

function stateNote(now: ServiceView, was: ServiceView | undefined, asked: CommandAsked): string {
  const forced = Math.max(0, now.forced - (was?.forced ?? 0));
  switch (now.state) {
    case 'paused':
    case 'stopping':
      return now.sessions > 0 ? ` (${sessions(now.sessions)} left)` : ' (drained)';
    case 'stopped':
      // SPEC §2: a hard stop ends every session now; say how many, even none.
      if (asked.action === 'stop' && asked.graceful !== true) return ` (${forced} session(s) ended (forced))`;
      return forced > 0 ? ` (${forced} session(s) ended (forced))` : '';
    default:
      return '';
  }
}
