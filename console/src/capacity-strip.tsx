import type { PoolStatus } from './types.ts';

/**
 * For each service, how many members accept it against the capacity guard's minimum (SPEC §5): at the
 * minimum, the next pause or stop of that service is refused.
 */
export function CapacityStrip({ pool }: { pool: PoolStatus }) {
  const services = new Map<string, { accepting: number; members: number; min: number }>();
  for (const member of pool.members) {
    for (const s of member.services) {
      const entry = services.get(s.id) ?? {
        accepting: 0,
        members: 0,
        min: s.minAccepting ?? pool.pool.minAccepting,
      };
      entry.members++;
      if (s.accepting) entry.accepting++;
      services.set(s.id, entry);
    }
  }
  const poolMin = pool.pool.minAccepting;
  return (
    <ul
      class="capacity"
      aria-label={`Members accepting each service; the capacity guard keeps at least ${poolMin} unless a service sets its own`}
    >
      {[...services].map(([id, { accepting, members, min }]) => {
        const tone = accepting < min ? 'danger' : accepting === min ? 'warn' : 'ok';
        const hint =
          tone === 'ok'
            ? `${accepting} of ${members} members accept ${id}`
            : tone === 'warn'
              ? `${id} is at the capacity guard: pausing or stopping another member is refused`
              : `${id} is below the capacity guard`;
        return (
          <li key={id} class={`capacity-item capacity-${tone}`} title={hint}>
            <span class="mono">{id}</span>
            <strong>
              {accepting}/{members}
            </strong>
            {tone !== 'ok' && (
              <span class="capacity-flag">{tone === 'warn' ? 'at guard' : 'below guard'}</span>
            )}
          </li>
        );
      })}
      <li class="capacity-min muted">min {poolMin}</li>
    </ul>
  );
}
