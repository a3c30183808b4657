import type { PoolView } from '../core/index.ts';

/**
 * SPEC §4.2 `reroute: redirect`: another member whose same service accepts new sessions, picked at random
 * so redirected callers spread over the pool; undefined when there is none (the caller then gets 503).
 */
export function acceptingMember(
  view: PoolView,
  member: string,
  service: string,
): { host: string } | undefined {
  const candidates = view.members.filter(
    (m) =>
      m.id !== member &&
      m.agentUp &&
      m.addresses.length > 0 &&
      m.services.some((s) => s.id === service && s.accepting),
  );
  const pick = candidates[Math.floor(Math.random() * candidates.length)];
  return pick ? { host: pick.addresses[0]! } : undefined;
}
