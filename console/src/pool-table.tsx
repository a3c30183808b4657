import { availability, targetLabel, type ActionKind, type ActionTarget } from './actions.ts';
import { dateTime, plural } from './format.ts';
import type { MemberStatus, PoolStatus, ServiceStatus } from './types.ts';

interface Props {
  pool: PoolStatus;
  /** No contact with the API: what is shown may be old, and actions are off. */
  stale: boolean;
  onAction: (kind: ActionKind, target: ActionTarget) => void;
}

const stateText: Record<ServiceStatus['state'], string> = {
  running: 'Running',
  paused: 'Paused',
  stopping: 'Stopping',
  stopped: 'Stopped',
  starting: 'Starting',
};

/** The pool as members × services (SPEC §7), with the actions that apply to each. */
export function PoolTable({ pool, stale, onAction }: Props) {
  return (
    // The table keeps its columns; on a narrow screen it scrolls inside its card, never the page.
    <div class="table-scroll pool-scroll">
      <table class="pool-table">
        <caption class="visually-hidden">
          Members and services of pool {pool.pool.name}, with state, sessions and actions
        </caption>
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">State</th>
            <th scope="col">Startup</th>
            <th scope="col">Accepting</th>
            <th scope="col" class="num">
              Sessions
            </th>
            <th scope="col">Drained</th>
            <th scope="col" class="num">
              Forced
            </th>
            <th scope="col" class="actions-head">
              Actions
            </th>
          </tr>
        </thead>
        {pool.members.map((member) => (
          <MemberRows key={member.id} member={member} stale={stale} onAction={onAction} />
        ))}
      </table>
    </div>
  );
}

function MemberRows({
  member,
  stale,
  onAction,
}: {
  member: MemberStatus;
  stale: boolean;
  onAction: Props['onAction'];
}) {
  const target: ActionTarget = { member };
  const sessions = member.services.reduce((sum, s) => sum + s.sessions, 0);
  const draining = member.services.some((s) => s.state === 'paused' || s.state === 'stopping');
  return (
    <tbody data-member={member.id} class={member.agent === 'down' ? 'member member-down' : 'member'}>
      <tr class="member-row">
        <th scope="rowgroup" colSpan={5}>
          <div class="member-head">
            <span class="member-name" tabIndex={-1} data-focus-target>
              {member.id}
            </span>
            <span class="mono muted">{member.address}</span>
            {member.agent === 'up' ? (
              <span class="pill pill-ok" title="the member's agent holds its lease">
                Agent up
              </span>
            ) : (
              <span class="pill pill-danger" title="the agent's lease lapsed: the member is left out of DNS">
                Agent down
              </span>
            )}
            {member.agent === 'down' ? (
              // SPEC §4: a member without its agent is out of DNS, whatever its last status said.
              <span class="pill pill-danger" data-out-of-service>
                Out of service · last reported {plural(sessions, 'session')}
              </span>
            ) : member.readyForOffline ? (
              <span class="pill pill-ready" data-ready-for-offline>
                ✓ Ready for offline
              </span>
            ) : draining ? (
              <span class="pill pill-warn">Draining · {plural(sessions, 'session')} left</span>
            ) : (
              <span class="pill">In service · {plural(sessions, 'session')}</span>
            )}
          </div>
        </th>
        <td class="actions" colSpan={3}>
          <ActionButtons
            target={target}
            kinds={['pause', 'resume', 'drain', 'start', 'stop']}
            stale={stale}
            onAction={onAction}
          />
        </td>
      </tr>
      {member.services.map((service) => (
        <ServiceRow key={service.id} member={member} service={service} stale={stale} onAction={onAction} />
      ))}
    </tbody>
  );
}

function ServiceRow({
  member,
  service,
  stale,
  onAction,
}: {
  member: MemberStatus;
  service: ServiceStatus;
  stale: boolean;
  onAction: Props['onAction'];
}) {
  const target: ActionTarget = { member, service };
  const pending = service.intent !== desiredOf(service.state);
  const primary: ActionKind =
    service.intent === 'running'
      ? 'pause'
      : service.intent === 'paused' || service.state === 'stopping'
        ? 'resume'
        : 'start';
  return (
    <tr data-service={service.id} class="service-row">
      <th scope="row" class="service-name">
        <span>{service.name}</span>
        {service.name !== service.id && <span class="mono muted"> {service.id}</span>}
        {service.components.length > 0 && <span class="components">{service.components.join(' · ')}</span>}
        <IntentNote service={service} />
      </th>
      <td data-col="state">
        <span class={`state state-${service.state}`}>{stateText[service.state]}</span>
        {member.agent === 'down' && (
          <span class="last-reported" title="the member's agent is down: this is the last state it reported">
            {' '}
            last reported
          </span>
        )}
        {pending && (
          <span class="pending" title="waiting for the member's agent to apply it">
            → {service.intent}
          </span>
        )}
        {service.error && (
          <span class="error-text" title={service.error}>
            {' '}
            failed
          </span>
        )}
      </td>
      <td data-col="startup">{service.startup}</td>
      <td data-col="accepting">
        {service.accepting ? <span class="yes">Yes</span> : <span class="no">No</span>}
      </td>
      <td
        data-col="sessions"
        class={`num sessions${service.sessions === 0 ? ' sessions-zero' : !service.accepting ? ' sessions-left' : ''}`}
      >
        {service.sessions}
        {byKindText(service) && <span class="by-kind"> {byKindText(service)}</span>}
      </td>
      <td data-col="drained">
        {service.drained ? <span class="pill pill-ready">Drained</span> : <span class="muted">—</span>}
      </td>
      <td data-col="forced" class={`num${service.forced > 0 ? ' forced' : ''}`}>
        {service.forced}
      </td>
      <td class="actions">
        <ActionButtons
          target={target}
          kinds={[primary, 'stop', 'startup']}
          stale={stale}
          onAction={onAction}
        />
      </td>
    </tr>
  );
}

const labels: Record<ActionKind, string> = {
  pause: 'Pause',
  drain: 'Drain',
  resume: 'Resume',
  start: 'Start',
  stop: 'Stop',
  startup: 'Startup…',
};

function ActionButtons({
  target,
  kinds,
  stale,
  onAction,
}: {
  target: ActionTarget;
  kinds: ActionKind[];
  stale: boolean;
  onAction: Props['onAction'];
}) {
  const name = targetLabel(target);
  return (
    <div class="action-buttons">
      {kinds.map((kind) => {
        const available = availability(kind, target);
        const { enabled, why } = stale ? { enabled: false, why: 'no contact with the API' } : available;
        return (
          <button
            key={kind}
            type="button"
            class={`btn btn-small btn-${kind}`}
            aria-label={`${labels[kind].replace('…', '')} ${name}`}
            title={enabled ? `${labels[kind].replace('…', '')} ${name}` : `${name}: ${why}`}
            disabled={!enabled}
            onClick={() => onAction(kind, target)}
          >
            {labels[kind]}
          </button>
        );
      })}
    </div>
  );
}

function desiredOf(state: ServiceStatus['state']): ServiceStatus['intent'] {
  if (state === 'running' || state === 'starting') return 'running';
  if (state === 'paused') return 'paused';
  return 'stopped';
}

/** `(1 requests, 2 websockets)` where a service has several kinds of session (http), else nothing. */
function byKindText(service: ServiceStatus): string {
  const kinds = Object.entries(service.sessionsByKind ?? {});
  // SPEC §14: sip flows open, when they are not counted as sessions already (drainFlows).
  if (kinds.length < 2 && (service.flows ?? 0) > 0) return `(${service.flows} flows open)`;
  return kinds.length < 2 ? '' : `(${kinds.map(([kind, n]) => `${n} ${kind}`).join(', ')})`;
}

/**
 * Who paused or stopped the service, since when and why (operator audit: "who paused, when, why" in the
 * console rows), for an intent an operator set; nothing for the config's defaults.
 */
function IntentNote({ service }: { service: ServiceStatus }) {
  if (service.intent === 'running' || !service.intentBy || service.intentBy === 'config') return null;
  const since = service.intentAt ? ` at ${dateTime(service.intentAt)}` : '';
  return (
    <span class="intent-note" data-intent-note>
      {service.intent} by {service.intentBy}
      {since}
      {service.reason && <span class="intent-reason">: {service.reason}</span>}
    </span>
  );
}
