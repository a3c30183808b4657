import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ActionDialog } from './action-dialog.tsx';
import { targetLabel, verbs, type ActionKind, type ActionRequest, type ActionTarget } from './actions.ts';
import { apiToken, fetchAudit, setApiToken } from './api-client.ts';
import { AuditLog } from './audit-log.tsx';
import { CapacityStrip } from './capacity-strip.tsx';
import { DrainChart, latestDraining } from './drain-chart.tsx';
import { EventFeed } from './event-feed.tsx';
import { clock } from './format.ts';
import { useLivePool, type Connection, type LivePool } from './live-pool.ts';
import { PoolTable } from './pool-table.tsx';
import { Toasts, type Toast } from './toasts.tsx';
import { TokenPrompt } from './token-prompt.tsx';
import type { AuditRecord, CommandResult, PoolStatus } from './types.ts';

/** Which action the open dialog is for, by ids: the dialog always shows the member's live status. */
interface OpenAction {
  kind: ActionKind;
  member: string;
  service?: string;
}

export function App({ live }: { live: LivePool }) {
  const state = useLivePool(live);
  const [open, setOpen] = useState<OpenAction | null>(null);
  const [followed, setFollowed] = useState<string | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [audit, setAudit] = useState<AuditRecord[] | null>(null);
  const [auditError, setAuditError] = useState<string | null>(null);
  const auditTimer = useRef<number | undefined>(undefined);
  const [hasToken, setHasToken] = useState(apiToken() !== null);

  const refreshAudit = useCallback(() => {
    window.clearTimeout(auditTimer.current);
    auditTimer.current = window.setTimeout(() => {
      fetchAudit(50).then(
        (records) => {
          setAudit(records);
          setAuditError(null);
        },
        (err: Error) => setAuditError(err.message),
      );
    }, 150);
  }, []);

  // The audit log has no stream of its own: read it at start, after each event and each command.
  const newestEvent = state.events[0];
  useEffect(() => refreshAudit(), [newestEvent, refreshAudit]);

  const toast = useCallback((t: Omit<Toast, 'id'>) => {
    const id = Date.now() + Math.random();
    setToasts((list) => [...list.slice(-3), { ...t, id }]);
    window.setTimeout(() => setToasts((list) => list.filter((x) => x.id !== id)), 8000);
  }, []);

  const request = useMemo(() => resolve(state.pool, open), [state.pool, open]);
  const pool = state.pool;

  const onDone = (done: ActionRequest, result: CommandResult) => {
    if (done.kind === 'drain' || done.kind === 'pause') setFollowed(done.target.member.id);
    toast(describe(done, result));
    refreshAudit();
  };

  const chartMember = (pool && (followed ?? latestDraining(pool))) || '';
  // The pool on screen is no longer current (a token prompt replaces it rather than greying it).
  const stale = pool !== null && state.connection !== 'live' && state.connection !== 'unauthorised';
  // Issue 16, fault 4: pauses an agent kept from its local copy because the store was wiped or replaced.
  const kept = (pool?.members ?? []).flatMap((m) =>
    m.services.filter((s) => s.kept).map((s) => `${m.id}/${s.id} (${s.intent})`),
  );

  /** A new token, or none: start over, so nothing read with the old one stays on screen. */
  const tokenChanged = () => {
    setHasToken(apiToken() !== null);
    setOpen(null);
    setAudit(null);
    setAuditError(null);
    setToasts([]);
    live.restart();
    refreshAudit();
  };

  return (
    <>
      <a class="skip-link" href="#pool">
        Skip to the pool
      </a>
      <header class="topbar">
        <div class="brand">
          <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
            <path d="M2 9c3-3 5-3 8 0s5 3 8 0 3-2 4-2M2 15c3-3 5-3 8 0s5 3 8 0 3-2 4-2" />
          </svg>
          <span>Ebb</span>
        </div>
        {pool ? (
          <div class="pool-id">
            <h1>{pool.pool.name}</h1>
            <span class="mono muted">{pool.pool.fqdn}</span>
          </div>
        ) : (
          <h1>Ebb console</h1>
        )}
        <ConnectionPill connection={state.connection} />
        {hasToken && (
          <button
            type="button"
            class="btn btn-small btn-topbar"
            title="Remove this tab's API token; the console asks for one again"
            onClick={() => {
              setApiToken(null);
              tokenChanged();
            }}
          >
            Forget token
          </button>
        )}
      </header>

      {stale && (
        <div class="stale-banner" role="alert" data-stale-banner>
          <strong>Lost contact with the API</strong>
          {state.lostAt !== null && <> — data as of {clock(state.lostAt)}</>}. Retrying; what is shown may no
          longer be true, and actions are off until the API answers.
        </div>
      )}

      {kept.length > 0 && (
        <div class="stale-banner" role="alert" data-kept-banner>
          <strong>The store was wiped or replaced</strong> — kept by their agents from their local copies, not
          accepting: {kept.join(', ')}. Resume them, or pause (stop) them again to keep them so.
        </div>
      )}

      <main class={stale ? 'layout layout-stale' : 'layout'} data-stale={stale ? 'true' : undefined}>
        <Toasts toasts={toasts} onDismiss={(id) => setToasts((list) => list.filter((t) => t.id !== id))} />
        {state.connection === 'unauthorised' ? (
          <TokenPrompt onAccepted={tokenChanged} />
        ) : !pool ? (
          <section class="card loading" aria-busy="true">
            <p>
              {state.connection === 'reconnecting'
                ? 'The API does not answer; retrying…'
                : 'Connecting to the pool…'}
            </p>
          </section>
        ) : (
          <>
            <section class="card pool-card" id="pool" aria-labelledby="pool-title" tabIndex={-1}>
              <div class="card-head">
                <h2 id="pool-title">Pool</h2>
                <CapacityStrip pool={pool} />
              </div>
              <PoolTable
                pool={pool}
                stale={stale}
                onAction={(kind: ActionKind, target: ActionTarget) =>
                  setOpen({
                    kind,
                    member: target.member.id,
                    ...(target.service ? { service: target.service.id } : {}),
                  })
                }
              />
            </section>

            <aside class="side">
              <section class="card" aria-labelledby="chart-title">
                <div class="card-head">
                  <h2 id="chart-title">Drain progress</h2>
                </div>
                <DrainChart
                  pool={pool}
                  history={state.history}
                  member={chartMember}
                  onSelect={setFollowed}
                  now={Date.now()}
                />
              </section>
              <section class="card events-card" aria-labelledby="events-title">
                <div class="card-head">
                  <h2 id="events-title">Live events</h2>
                </div>
                <EventFeed events={state.events} missed={state.missed} />
              </section>
            </aside>

            <section class="card audit-card" aria-labelledby="audit-title">
              <div class="card-head">
                <h2 id="audit-title">Audit log</h2>
                <span class="muted">last 50 commands, newest first</span>
              </div>
              <AuditLog records={audit} error={auditError} />
            </section>
          </>
        )}
      </main>

      <ActionDialog request={request} onClose={() => setOpen(null)} onDone={onDone} />
    </>
  );
}

function ConnectionPill({ connection }: { connection: Connection }) {
  const text = {
    live: 'Live',
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    unauthorised: 'Needs a token',
  }[connection];
  return (
    <span class={`connection connection-${connection}`} role="status" data-connection={connection}>
      <span class="connection-dot" aria-hidden="true" />
      {text}
    </span>
  );
}

function resolve(pool: PoolStatus | null, open: OpenAction | null): ActionRequest | null {
  if (!pool || !open) return null;
  const member = pool.members.find((m) => m.id === open.member);
  if (!member) return null;
  const service = open.service ? member.services.find((s) => s.id === open.service) : undefined;
  if (open.service && !service) return null;
  return { kind: open.kind, target: service ? { member, service } : { member } };
}

function describe(request: ActionRequest, result: CommandResult): Omit<Toast, 'id'> {
  const label = targetLabel(request.target);
  const verb = request.kind === 'startup' ? 'Startup type' : verbs[request.kind];
  const changed =
    request.kind === 'startup'
      ? result.changed
          .map((c) => `${c.service}: startup type is now ${startupOf(result, c.service)}`)
          .join(', ')
      : result.changed.map((c) => `${c.service}: ${c.from} → ${c.to}`).join(', ');
  const lines = [changed || `No change (${result.unchanged.map((u) => `${u.service} ${u.why}`).join('; ')})`];
  if (result.forced) lines.push('Forced past the capacity guard (audited).');
  for (const f of result.failures ?? [])
    lines.push(`${f.service}: not applied: ${f.message} (${f.code}); the agent keeps trying.`);
  const failed = (result.failures ?? []).length > 0;
  if (!result.applied && !failed && result.changed.length > 0)
    lines.push("Stored; the member's agent has not applied it yet (is it down?).");
  return {
    tone: failed ? 'danger' : !result.applied && result.changed.length > 0 ? 'warn' : 'ok',
    title: `${verb} ${label}`,
    text: lines.join(' '),
  };
}

function startupOf(result: CommandResult, service: string): string {
  return result.status.services.find((s) => s.id === service)?.startup ?? 'changed';
}
