import { clock, duration, plural } from './format.ts';
import type { PoolEvent } from './types.ts';

interface Props {
  events: PoolEvent[];
  missed: number;
}

const tone: Record<string, string> = {
  'service.started': 'ok',
  'service.resumed': 'ok',
  'agent.up': 'ok',
  'service.drained': 'ready',
  'service.paused': 'warn',
  'service.stopping': 'warn',
  'service.stopped': 'neutral',
  'guard.refused': 'warn',
  'session.forced': 'danger',
  'service.failed': 'danger',
  'agent.down': 'danger',
  'agent.handoff': 'neutral',
};

/** The SPEC §2 events as they arrive on the stream, newest first. */
export function EventFeed({ events, missed }: Props) {
  return (
    <div class="event-feed">
      {missed > 0 && (
        <p class="note">
          {plural(missed, 'event')} were skipped while this page lagged; the pool above is current.
        </p>
      )}
      {events.length === 0 ? (
        <p class="muted empty">No events since this page opened.</p>
      ) : (
        <ol class="events" aria-label="Events, newest first">
          {events.map((e, i) => (
            <li key={`${e.at}-${e.code}-${e.member}-${e.service ?? ''}-${events.length - i}`}>
              <time class="mono muted" dateTime={new Date(e.at).toISOString()}>
                {clock(e.at)}
              </time>
              <span class={`code code-${tone[e.code] ?? 'neutral'}`}>{e.code}</span>
              <span class="mono">{e.service ? `${e.member}/${e.service}` : e.member}</span>
              <span class="muted facts">{facts(e)}</span>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

function facts(e: PoolEvent): string {
  const d = e.data ?? {};
  const parts: string[] = [];
  if (typeof d['drainMs'] === 'number') parts.push(`in ${duration(d['drainMs'])}`);
  if (typeof d['count'] === 'number') parts.push(plural(d['count'], 'session'));
  else if (
    typeof d['sessions'] === 'number' &&
    (e.code === 'service.paused' || e.code === 'service.stopping')
  )
    parts.push(`${plural(d['sessions'], 'session')} to drain`);
  if (typeof d['forced'] === 'number' && d['forced'] > 0) parts.push(`${d['forced']} forced`);
  if (typeof d['why'] === 'string') parts.push(d['why']);
  if (typeof d['action'] === 'string') parts.push(`${d['action']} refused`);
  if (typeof d['reason'] === 'string') parts.push(d['reason']);
  if (typeof d['error'] === 'string') parts.push(d['error']);
  return parts.join(' · ');
}
