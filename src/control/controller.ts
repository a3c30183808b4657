import { randomUUID } from 'node:crypto';
import {
  EbbError,
  EventCode,
  GuardRefusedError,
  InvalidTransitionError,
  NotFoundError,
  StoreError,
  defaultIntent,
  formatDuration,
  isKeptIntent,
  parseIntent,
  type DesiredRun,
  type ServiceIntent,
  type StartupType,
} from '../core/index.ts';
import type { Compare, Store, TxnOp } from '../store/index.ts';
import { checkCapacity, type GuardVerdict } from './capacity-guard.ts';
import type { MemberStatus, PoolState } from './pool-state.ts';

export const Action = {
  pause: 'pause',
  resume: 'resume',
  start: 'start',
  stop: 'stop',
  startup: 'startup',
} as const;
export type Action = (typeof Action)[keyof typeof Action];

/** What an audit record may say was done: the commands, and `force`, written by an agent (EventLog) when it ends sessions. */
export const AuditAction = { ...Action, force: 'force' } as const;
export type AuditAction = (typeof AuditAction)[keyof typeof AuditAction];

export interface CommandRequest {
  action: Action;
  member: string;
  /** One service, or every service of the member when absent (SPEC §2, member-level commands). */
  service?: string;
  reason?: string;
  /** From now, in ms: when remaining sessions are ended and counted as forced. */
  deadlineMs?: number;
  graceful?: boolean;
  force?: boolean;
  startup?: StartupType;
  /** Who asked (token name, or `local`). */
  by: string;
}

export interface ServiceChange {
  service: string;
  from: DesiredRun;
  to: DesiredRun;
  revision: number;
}

export interface CommandResult {
  action: Action;
  member: string;
  changed: ServiceChange[];
  /** Services the command left as they were, and why. */
  unchanged: Array<{ service: string; why: string }>;
  /** True when the member's agent confirmed every change (a pause: its listeners refuse). */
  applied: boolean;
  /** Changes the member's agent reported it could not apply (the intent is stored; the agent retries). */
  failures: ApplyFailure[];
  forced: boolean;
  status: MemberStatus;
}

export interface ApplyFailure {
  service: string;
  code: string;
  message: string;
}

export interface AuditRecord {
  id: string;
  at: number;
  by: string;
  action: AuditAction;
  member: string;
  service: string | null;
  reason: string;
  force: boolean;
  /** `refused`: by the capacity guard; `denied`: by access control (401, 403) before the command ran. */
  result: 'ok' | 'refused' | 'denied' | 'error';
  detail: string;
}

const casAttempts = 20;

/**
 * Turns operator commands into intents in the store (SPEC §2, §3, §5): validates them against the service's
 * state and startup type, applies the capacity guard and the write in one compare-and-set, waits until the
 * member's agent has applied them, and audits every attempt.
 */
export class Controller {
  private readonly state: PoolState;
  private readonly store: Store;
  private readonly ackTimeoutMs: number;

  constructor(state: PoolState, store: Store, options: { ackTimeoutMs?: number } = {}) {
    this.state = state;
    this.store = store;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
  }

  async execute(request: CommandRequest): Promise<CommandResult> {
    try {
      // A command that changes the store is audited in the same transaction (SPEC §8).
      return await this.run(request);
    } catch (err) {
      const refused = err instanceof GuardRefusedError;
      if (refused) {
        this.state.emit({
          code: EventCode.guardRefused,
          member: request.member,
          ...(request.service ? { service: request.service } : {}),
          at: Date.now(),
          data: { action: request.action, by: request.by, ...err.details },
        });
      }
      await this.audit(request, refused ? 'refused' : 'error', (err as Error).message).catch(() => {});
      throw err;
    }
  }

  /**
   * A state-changing request refused by access control (401, 403: no token, a weak role, a foreign
   * Origin or Host) is audited too (SPEC §8); `by` names what is known of the caller.
   */
  async auditDenied(request: CommandRequest, why: string): Promise<void> {
    await this.audit(request, 'denied', why);
  }

  /** Newest first. Keys sort by time only to the millisecond; the store revision orders within one. */
  async auditLog(limit = 200): Promise<AuditRecord[]> {
    const rows = await this.store.list(this.state.keys.audits());
    return rows
      .sort((a, b) => b.modRevision - a.modRevision)
      .slice(0, limit)
      .map((r) => JSON.parse(r.value) as AuditRecord);
  }

  private async run(request: CommandRequest): Promise<CommandResult> {
    const member = this.state.config.members.find((m) => m.id === request.member);
    if (!member) throw new NotFoundError(`member "${request.member}"`);
    if (request.service !== undefined && !member.services.some((s) => s.id === request.service)) {
      throw new NotFoundError(`service "${request.service}" on member "${member.id}"`);
    }
    const targets = request.service ? [request.service] : member.services.map((s) => s.id);

    for (let attempt = 0; attempt < casAttempts; attempt++) {
      const plan = await this.plan(request, targets);
      const record = auditRecord(request, 'ok', describePlan(request, plan));
      const auditOp: TxnOp = {
        type: 'put',
        key: this.state.keys.audit(record.at, record.id),
        value: JSON.stringify(record),
      };
      const txn = await this.store.txn(plan.compares, [...plan.ops, auditOp]);
      if (!txn.succeeded) continue; // someone else changed the same services: look again
      const changed = plan.changes.map((c) => ({ ...c, revision: txn.revision }));
      const { applied, failures } = await this.waitApplied(member.id, changed);
      if (!applied) await this.auditUnapplied(request, failures);
      return {
        action: request.action,
        member: member.id,
        changed,
        unchanged: plan.unchanged,
        applied,
        failures,
        forced: plan.forced,
        status: this.state.snapshot().members.find((m) => m.id === member.id)!,
      };
    }
    throw new StoreError(`could not apply ${request.action}: the intents kept changing under it`);
  }

  /** Reads the current intents from the store and works out the writes, the guard and the compares. */
  private async plan(request: CommandRequest, targets: string[]) {
    const members = this.state.config.members;
    const compares: Compare[] = [];
    const current = new Map<string, { intent: ServiceIntent; revision: number }>();
    const agentUp = new Map<string, boolean>();
    // Range reads, not one read per member: a pause in a pool of a thousand stays one round trip. All
    // three at one revision: read apart, a plan could see the intents before a rival's commit and the
    // guard key after it, pass its compare on a stale view, and both racing pauses would win.
    const rows = new Map<string, { value: string; modRevision: number }>();
    const snapshot = await this.store.snapshot([
      this.state.keys.agents(),
      this.state.keys.intents(),
      this.state.keys.guards(),
    ]);
    for (const row of snapshot.rows.flat()) rows.set(row.key, row);
    const revisionOf = (key: string) => rows.get(key)?.modRevision ?? 0;
    for (const m of members) {
      agentUp.set(m.id, rows.has(this.state.keys.agent(m.id)));
      for (const s of m.services) {
        if (!targets.includes(s.id)) continue;
        const key = this.state.keys.intent(m.id, s.id);
        const row = rows.get(key);
        const intent = (row && parseIntent(row.value)) || defaultIntent(s.startup);
        current.set(`${m.id}/${s.id}`, { intent, revision: row?.modRevision ?? 0 });
      }
    }
    // SPEC §5, atomically: every command that changes a service's intent also rewrites that service's
    // guard key, so comparing the guard key (not each member's intent: etcd caps a transaction at 128
    // operations) is enough for two racing commands to see each other. The target's own intents are
    // compared too, for commands that skip the guard (resume, startup).
    for (const service of targets) {
      compares.push({
        key: this.state.keys.guard(service),
        modRevision: revisionOf(this.state.keys.guard(service)),
      });
      const key = this.state.keys.intent(request.member, service);
      compares.push({ key, modRevision: revisionOf(key) });
    }

    const ops: TxnOp[] = [];
    const changes: Array<Omit<ServiceChange, 'revision'>> = [];
    const unchanged: Array<{ service: string; why: string }> = [];
    const after = new Map<string, DesiredRun>();
    const startupBefore = new Map<string, StartupType>();
    for (const service of targets) {
      const { intent } = current.get(`${request.member}/${service}`)!;
      const next = nextIntent(request, intent, targets.length === 1);
      if (typeof next === 'string') {
        unchanged.push({ service, why: next });
        continue;
      }
      ops.push({
        type: 'put',
        key: this.state.keys.intent(request.member, service),
        value: JSON.stringify(next),
      });
      ops.push({
        type: 'put',
        key: this.state.keys.guard(service),
        value: JSON.stringify({ by: request.by, member: request.member, at: Date.now() }),
      });
      changes.push({ service, from: intent.run, to: next.run });
      startupBefore.set(service, intent.startup);
      after.set(service, next.run);
    }

    let forced = false;
    for (const service of after.keys()) {
      const verdict = this.guard(service, request.member, after.get(service)!, current, agentUp);
      if (verdict.allowed) continue;
      if (!request.force) {
        throw new GuardRefusedError(
          `refused by the capacity guard: ${request.action} ${request.member}/${service} would leave ` +
            `${verdict.acceptingAfter} member(s) accepting ${service}; the pool needs at least ${verdict.minAccepting} ` +
            `(use --force to override; it is audited)`,
          { ...verdict },
        );
      }
      forced = true;
    }
    return { compares, ops, changes, unchanged, forced, startupBefore };
  }

  private guard(
    service: string,
    member: string,
    afterRun: DesiredRun,
    current: Map<string, { intent: ServiceIntent }>,
    agentUp: Map<string, boolean>,
  ): GuardVerdict {
    const config = this.state.serviceConfig(member, service);
    const members = this.state.config.members
      .filter((m) => m.services.some((s) => s.id === service))
      .map((m) => {
        const before = current.get(`${m.id}/${service}`)!.intent.run;
        return {
          member: m.id,
          agentUp: agentUp.get(m.id) ?? false,
          before,
          after: m.id === member ? afterRun : before,
        };
      });
    return checkCapacity({
      service,
      minAccepting: config?.minAccepting ?? this.state.config.pool.minAccepting,
      members,
    });
  }

  /**
   * Waits until the member's agent reports each change applied or failed. `applied` is false when the
   * agent is down or slow, or when it reported a failure (then `failures` names it): the agent never
   * confirms an intent it could not apply.
   */
  private async waitApplied(
    member: string,
    changed: ServiceChange[],
  ): Promise<{ applied: boolean; failures: ApplyFailure[] }> {
    if (changed.length === 0) return { applied: true, failures: [] };
    if (!this.state.agentUp(member)) return { applied: false, failures: [] };
    const outcome = (c: ServiceChange) => {
      const status = this.state.status(member, c.service);
      if (status && status.intentRevision >= c.revision) return 'applied';
      if (status?.applyError && status.applyError.intentRevision >= c.revision) return 'failed';
      return 'pending';
    };
    const settled = await this.state.waitFor(
      () => changed.every((c) => outcome(c) !== 'pending'),
      this.ackTimeoutMs,
    );
    const failures: ApplyFailure[] = changed
      .filter((c) => outcome(c) === 'failed')
      .map((c) => {
        const error = this.state.status(member, c.service)!.applyError!;
        return { service: c.service, code: error.code, message: error.message };
      });
    // SPEC §2: pause returns only once the listener refuses. An agent that is up but has not confirmed in
    // time may still be accepting (its store member froze, issue 16 fault 1): that is a failure to tell,
    // never a success with a footnote. (An agent that is down is told apart: `applied` false, no failure.)
    if (!settled && this.state.agentUp(member)) {
      for (const c of changed.filter((c) => outcome(c) === 'pending')) {
        failures.push({
          service: c.service,
          code: 'EBB_NOT_CONFIRMED',
          message:
            `the agent did not confirm ${c.to} within ${formatDuration(this.ackTimeoutMs)}: ` +
            `it may still be ${c.from === 'running' ? 'accepting' : c.from}`,
        });
      }
    }
    return { applied: settled && failures.length === 0, failures };
  }

  /**
   * The stored command is audited already, in its transaction; what the agent did not confirm afterwards
   * is a record of its own: a failure it reported, or no answer (agent down or slow).
   */
  private async auditUnapplied(request: CommandRequest, failures: ApplyFailure[]): Promise<void> {
    const detail =
      failures.length > 0
        ? failures.map((f) => `${f.service}: not applied by the agent: ${f.message} (${f.code})`).join('; ')
        : 'stored; not yet applied by the agent (agent down or slow)';
    try {
      await this.audit(request, failures.length > 0 ? 'error' : 'ok', detail);
    } catch (err) {
      // The command itself is in the audit log already (its transaction); this note could not join it.
      // A failure is still told with the command's own answer; an unconfirmed one says so there too.
      const last = failures[failures.length - 1];
      if (last) last.message += ` (and this failure could not be audited: ${(err as Error).message})`;
    }
  }

  private async audit(request: CommandRequest, result: AuditRecord['result'], detail: string): Promise<void> {
    const record = auditRecord(request, result, detail);
    await this.store.put(this.state.keys.audit(record.at, record.id), JSON.stringify(record));
  }
}

function auditRecord(request: CommandRequest, result: AuditRecord['result'], detail: string): AuditRecord {
  return {
    id: randomUUID(),
    at: Date.now(),
    by: request.by,
    action: request.action,
    member: request.member,
    service: request.service ?? null,
    reason: request.reason ?? '',
    force: request.force === true,
    result,
    detail,
  };
}

/**
 * The intent a command leads to, or why it changes nothing. `single`: the command names one service, so
 * a command that does not fit is an error rather than a skip.
 */
function nextIntent(request: CommandRequest, intent: ServiceIntent, single: boolean): ServiceIntent | string {
  const base = { ...intent, by: request.by, at: Date.now(), reason: request.reason ?? '' };
  const deadlineAt = request.deadlineMs === undefined ? null : Date.now() + request.deadlineMs;
  const skip = (why: string): string => {
    if (single) throw new InvalidTransitionError(`${request.member}/${request.service}: ${why}`);
    return why;
  };
  switch (request.action) {
    case 'pause':
      if (intent.run === 'stopped') return skip('is stopped; only a running service can be paused');
      // A pause the agent kept after the store was replaced is adopted by pausing again (issue 16, fault 4).
      if (intent.run === 'paused' && deadlineAt === null && !isKeptIntent(intent)) return 'already paused';
      return { ...base, run: 'paused', graceful: false, deadlineAt };
    case 'resume':
    case 'start':
      if (intent.startup === 'disabled') return skip('its startup type is disabled; it cannot be started');
      if (intent.run === 'running') return 'already running';
      if (request.action === 'start' && intent.run === 'paused') return 'is paused; use resume';
      return { ...base, run: 'running', graceful: false, deadlineAt: null };
    case 'stop':
      if (
        intent.run === 'stopped' &&
        !(intent.graceful && request.graceful === false) &&
        !isKeptIntent(intent)
      )
        return 'already stopped';
      return { ...base, run: 'stopped', graceful: request.graceful === true, deadlineAt };
    case 'startup':
      if (!request.startup)
        throw new EbbError('EBB_BAD_REQUEST', 'startup type is required', { httpStatus: 400, exitCode: 2 });
      if (intent.startup === request.startup) return `startup is already ${request.startup}`;
      return { ...base, reason: intent.reason, startup: request.startup };
  }
}

function describePlan(
  request: CommandRequest,
  plan: {
    changes: Array<Omit<ServiceChange, 'revision'>>;
    forced: boolean;
    startupBefore: Map<string, StartupType>;
  },
): string {
  const changed = plan.changes
    .map((c) =>
      request.action === 'startup'
        ? `${c.service}: startup ${plan.startupBefore.get(c.service)} → ${request.startup}`
        : `${c.service}: ${c.from} → ${c.to}`,
    )
    .join(', ');
  // SPEC §2: a deadline on a pause or a graceful stop is part of what was asked.
  const deadline =
    request.deadlineMs !== undefined && plan.changes.length > 0
      ? `; deadline ${formatDuration(request.deadlineMs)}`
      : '';
  return `${changed || 'no change'}${deadline}${plan.forced ? ' (forced past the capacity guard)' : ''}`;
}
