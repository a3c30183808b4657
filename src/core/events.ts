/** Event codes are stable: scripts, metrics and the console match on them (SPEC §2). */
export const EventCode = {
  serviceStarted: 'service.started',
  servicePaused: 'service.paused',
  serviceDrained: 'service.drained',
  serviceResumed: 'service.resumed',
  serviceStopping: 'service.stopping',
  serviceStopped: 'service.stopped',
  serviceFailed: 'service.failed',
  sessionForced: 'session.forced',
  guardRefused: 'guard.refused',
  agentUp: 'agent.up',
  agentDown: 'agent.down',
  agentHandoff: 'agent.handoff',
} as const;
export type EventCode = (typeof EventCode)[keyof typeof EventCode];

export interface EbbEvent {
  code: EventCode;
  member: string;
  service?: string;
  at: number;
  /** Free-form facts: session counts, forced counts, reasons. */
  data?: Record<string, unknown>;
}
