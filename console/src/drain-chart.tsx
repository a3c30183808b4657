import { clock, duration, plural } from './format.ts';
import type { Sample } from './live-pool.ts';
import type { MemberStatus, PoolStatus } from './types.ts';

interface Props {
  pool: PoolStatus;
  history: ReadonlyMap<string, Sample[]>;
  member: string;
  onSelect: (member: string) => void;
  now: number;
}

const width = 420;
const height = 190;
const pad = { left: 34, right: 12, top: 14, bottom: 24 };

/** When a member's drain began and ended, from its services' status. */
export function drainTimes(member: MemberStatus): { startedAt: number | null; drainedAt: number | null } {
  const draining = member.services.filter(
    (s) => (s.state === 'paused' || s.state === 'stopping') && s.drainStartedAt,
  );
  const startedAt = draining.length ? Math.min(...draining.map((s) => s.drainStartedAt!)) : null;
  const drainedAt =
    member.readyForOffline && draining.length && draining.every((s) => s.drainedAt)
      ? Math.max(...draining.map((s) => s.drainedAt!))
      : null;
  return { startedAt, drainedAt };
}

/** The member whose drain the chart follows when the operator has not picked one: the latest to start. */
export function latestDraining(pool: PoolStatus): string | undefined {
  let best: { id: string; at: number } | undefined;
  for (const member of pool.members) {
    const { startedAt } = drainTimes(member);
    if (startedAt !== null && (!best || startedAt > best.at)) best = { id: member.id, at: startedAt };
  }
  return best?.id ?? pool.members[0]?.id;
}

/** Sessions over time for one member: how its drain is going (SPEC §7). Drawn as SVG, no library. */
export function DrainChart({ pool, history, member: memberId, onSelect, now }: Props) {
  const member = pool.members.find((m) => m.id === memberId) ?? pool.members[0];
  if (!member) return null;
  const samples = history.get(member.id) ?? [];
  const total = member.services.reduce((sum, s) => sum + s.sessions, 0);
  const { startedAt, drainedAt } = drainTimes(member);

  // A drain is drawn from just before its pause, and grows to the right; otherwise the last 2 minutes.
  let x0: number;
  let x1: number;
  if (startedAt !== null) {
    x1 = Math.max(now, startedAt + 50_000);
    x0 = Math.max(startedAt - Math.max(5000, (x1 - startedAt) * 0.1), x1 - 30 * 60_000);
  } else {
    x1 = now;
    x0 = now - 120_000;
  }
  const span = x1 - x0;
  const inWindow = samples.filter((s) => s.t >= x0 && s.t <= now);
  const before = samples.filter((s) => s.t < x0).at(-1);
  const points = [...(before ? [{ t: x0, total: before.total }] : []), ...inWindow, { t: now, total }];
  const peak = Math.max(4, ...points.map((p) => p.total));
  const yMax = niceCeil(peak);
  const x = (t: number) => pad.left + ((t - x0) / span) * (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - (v / yMax) * (height - pad.top - pad.bottom);

  let line = '';
  points.forEach((p, i) => {
    const px = x(Math.max(p.t, x0)).toFixed(1);
    if (i === 0) line = `M${px},${y(p.total).toFixed(1)}`;
    else line += `H${px}V${y(p.total).toFixed(1)}`;
  });
  const first = points[0]!;
  const area = `${line}V${y(0)}H${x(Math.max(first.t, x0)).toFixed(1)}Z`;
  const yTicks = Number.isInteger(yMax / 2) ? [0, yMax / 2, yMax] : [0, yMax];
  const xTicks = [x0, x0 + span / 2, x1];

  let summary: string;
  if (member.readyForOffline && startedAt !== null) {
    summary = `${member.id} is ready for offline${drainedAt ? `: drained in ${duration(drainedAt - startedAt)}` : ''}.`;
  } else if (member.readyForOffline) {
    summary = `${member.id} is ready for offline.`;
  } else if (startedAt !== null) {
    summary = `Draining ${member.id}: ${plural(total, 'session')} left, ${duration(now - startedAt)} since the pause.`;
  } else {
    summary = `${member.id} is in service with ${plural(total, 'session')}. Pause or drain it to follow its drain here.`;
  }
  const deadline = member.services
    .map((s) => s.deadlineAt)
    .filter((d): d is number => d !== null && d > now)
    .sort((a, b) => a - b)[0];

  return (
    <div class="drain-chart">
      <div class="segmented" role="group" aria-label="Member to follow">
        {pool.members.map((m) => (
          <button
            key={m.id}
            type="button"
            class="segment"
            aria-pressed={m.id === member.id}
            onClick={() => onSelect(m.id)}
          >
            {m.id}
          </button>
        ))}
      </div>
      <p class={`chart-summary${member.readyForOffline ? ' chart-summary-ready' : ''}`} aria-live="polite">
        {summary}
        {deadline && !member.readyForOffline && (
          <span class="muted"> Deadline in {duration(deadline - now)}.</span>
        )}
      </p>
      <svg
        viewBox={`0 0 ${width} ${height}`}
        class="chart"
        role="img"
        aria-label={`Sessions on ${member.id} since ${clock(x0)}; now ${total}`}
        data-chart-member={member.id}
      >
        {yTicks.map((v) => (
          <g key={`y${v}`}>
            <line class="grid" x1={pad.left} x2={width - pad.right} y1={y(v)} y2={y(v)} />
            <text class="tick" x={pad.left - 6} y={y(v) + 4} text-anchor="end">
              {Math.round(v)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text
            key={`x${i}`}
            class="tick"
            x={x(t)}
            y={height - 6}
            text-anchor={i === 0 ? 'start' : i === 2 ? 'end' : 'middle'}
          >
            {t === now ? 'now' : clock(t)}
          </text>
        ))}
        <path class="area" d={area} />
        <path class="line" d={line} />
        {startedAt !== null && startedAt >= x0 && (
          <Marker x={x(startedAt)} label="paused" className="marker-pause" />
        )}
        {drainedAt !== null && drainedAt >= x0 && (
          <Marker
            x={x(drainedAt)}
            label="drained"
            className="marker-drained"
            row={startedAt !== null && x(drainedAt) - x(startedAt) < 56 ? 1 : 0}
          />
        )}
        <circle class="dot" cx={x(now)} cy={y(total)} r={3.5} />
      </svg>
      <ul class="chart-legend">
        {member.services.map((s) => (
          <li key={s.id}>
            <span class={`dot-small state-dot-${s.state}`} aria-hidden="true" />
            {s.id}: <strong>{s.sessions}</strong>
          </li>
        ))}
      </ul>
    </div>
  );
}

function Marker({
  x,
  label,
  className,
  row = 0,
}: {
  x: number;
  label: string;
  className: string;
  row?: number;
}) {
  const flip = x > width - pad.right - 50; // near the right edge: label on the left of the line
  return (
    <g class={className}>
      <line x1={x} x2={x} y1={pad.top - 4} y2={height - pad.bottom} />
      <text x={flip ? x - 4 : x + 4} y={pad.top + 6 + row * 13} text-anchor={flip ? 'end' : 'start'}>
        {label}
      </text>
    </g>
  );
}

/** 4 → 4, 7 → 8, 13 → 15, 42 → 50, 130 → 150… */
function niceCeil(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= v) return step * magnitude;
  return 10 * magnitude;
}
