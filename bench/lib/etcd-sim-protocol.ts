/** What `etcd-simulator.ts` (a child process) and the benchmarks that start it share: no side effects. */

export const SimPattern = { idle: 'idle', rewrite: 'rewrite', busy: 'busy' } as const;
export type SimPattern = (typeof SimPattern)[keyof typeof SimPattern];

/** The agent's status coalescing interval (`statusCoalesceMs` in src/service/member-agent.ts). */
export const busyIntervalMs = 50;

/** One `sim-stats {...}` line: counts since the simulator started, put latency of the last second. */
export interface SimStats {
  members: number;
  puts: number;
  putErrors: number;
  grants: number;
  leasesLost: number;
  inFlight: number;
  putP50: number;
  putP99: number;
  at: number;
}

export interface SimReady {
  members: number;
  pattern: SimPattern;
  clients: number;
  ms: number;
}

/** 127.1.<1 + i div 250>.<1 + i mod 250>: up to 62,500 distinct loopback addresses. */
export function simulatedAddress(index: number): string {
  return `127.1.${1 + Math.floor(index / 250)}.${1 + (index % 250)}`;
}

export function simulatedId(index: number): string {
  return `s${String(index + 1).padStart(4, '0')}`;
}
