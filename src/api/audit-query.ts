import { AuditAction, type AuditRecord } from '../control/index.ts';
import { BadRequestError, durationMs, type FieldIssue } from '../core/index.ts';

/** `GET /v1/audit`'s query, validated: a bad value is a 400 naming it, never silently ignored. */
export interface AuditQuery {
  limit: number;
  member?: string;
  action?: AuditAction;
  /** Epoch ms: records at or after it. */
  since?: number;
}

export const maxAuditLimit = 1000;
const defaultLimit = 200;
const actions = Object.values(AuditAction) as string[];

/**
 * `limit` (1-1000, default 200), `member`, `action` (a command or `force`) and `since` (an ISO time,
 * epoch ms, or a duration back from `now`: `1h`).
 */
export function parseAuditQuery(query: Record<string, string | undefined>, now = Date.now()): AuditQuery {
  const issues: FieldIssue[] = [];
  const out: AuditQuery = { limit: defaultLimit };
  const { limit, member, action, since } = query;
  if (limit !== undefined) {
    const n = /^\d{1,7}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1))
      issues.push({ path: 'limit', message: `must be a whole number from 1 to ${maxAuditLimit}` });
    else out.limit = Math.min(n, maxAuditLimit);
  }
  if (member !== undefined) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(member))
      issues.push({ path: 'member', message: 'must be a member id' });
    else out.member = member;
  }
  if (action !== undefined) {
    if (!actions.includes(action))
      issues.push({ path: 'action', message: `must be one of ${actions.join(', ')}` });
    else out.action = action as AuditAction;
  }
  if (since !== undefined) {
    const at = sinceTime(since, now);
    if (at === null)
      issues.push({
        path: 'since',
        message: 'must be a time (2026-12-01T10:00:00Z), epoch ms, or a duration ago (1h)',
      });
    else out.since = at;
  }
  if (issues.length > 0) throw new BadRequestError(issues);
  return out;
}

function sinceTime(text: string, now: number): number | null {
  if (/^\d{10,}$/.test(text)) return Number(text);
  const ago = durationMs(text);
  if (ago !== null) return now - ago;
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return null;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : at;
}

/** The records the query asks for, newest first (`records` is newest first). */
export function selectAudit(records: readonly AuditRecord[], query: AuditQuery): AuditRecord[] {
  return records
    .filter(
      (r) =>
        (query.member === undefined || r.member === query.member) &&
        (query.action === undefined || r.action === query.action) &&
        (query.since === undefined || r.at >= query.since),
    )
    .slice(0, query.limit);
}
