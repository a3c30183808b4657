/**
 * The API's wire format as the console reads it (`GET /v1/pool`, `GET /v1/events`, `GET /v1/audit`).
 * Written out here rather than imported from `src/` so the browser bundle depends on the HTTP contract
 * (docs/api.md), not on the server's modules.
 */
export type ServiceState = 'stopped' | 'starting' | 'running' | 'paused' | 'stopping';
export type StartupType = 'automatic' | 'manual' | 'disabled';
export type DesiredRun = 'running' | 'paused' | 'stopped';

export interface ServiceStatus {
  id: string;
  name: string;
  components: string[];
  state: ServiceState;
  startup: StartupType;
  intent: DesiredRun;
  accepting: boolean;
  /** The capacity guard's minimum for this service (SPEC §5). */
  minAccepting?: number;
  sessions: number;
  /** By kind: tcp connections, sip dialogs, http requests and websockets (older APIs leave it out). */
  sessionsByKind?: Record<string, number>;
  /** sip over tcp/tls/ws: client flows still open (SPEC §14); older APIs leave it out. */
  flows?: number;
  drained: boolean;
  forced: number;
  accepted: number;
  upstreamFailures: number;
  refused: number;
  drainStartedAt: number | null;
  drainedAt: number | null;
  deadlineAt: number | null;
  reason: string;
  /** Who set the current intent (`config`: the default) and when; older APIs leave them out. */
  intentBy?: string;
  intentAt?: number | null;
  error: string | null;
  /** Kept by its agent from its local copy: the store was wiped or replaced (older APIs leave it out). */
  kept?: boolean;
}

export interface MemberStatus {
  id: string;
  address: string;
  agent: 'up' | 'down';
  readyForOffline: boolean;
  services: ServiceStatus[];
}

export interface PoolStatus {
  pool: { name: string; fqdn: string; minAccepting: number };
  members: MemberStatus[];
}

/** A SPEC §2 event (`service.paused`, `service.drained`, …). */
export interface PoolEvent {
  code: string;
  member: string;
  service?: string;
  at: number;
  data?: Record<string, unknown>;
}

/** The stream's coalesced `sessions` event. */
export interface SessionsUpdate {
  member: string;
  service: string;
  sessions: number;
  accepted: number;
  forced: number;
  at: number;
}

export interface AuditRecord {
  id: string;
  at: number;
  by: string;
  action: string;
  member: string;
  service: string | null;
  reason: string;
  force: boolean;
  result: 'ok' | 'refused' | 'denied' | 'error';
  detail: string;
}

export interface CommandResult {
  action: string;
  member: string;
  changed: Array<{ service: string; from: DesiredRun; to: DesiredRun; revision: number }>;
  unchanged: Array<{ service: string; why: string }>;
  applied: boolean;
  /** Changes the agent reported it could not apply (older APIs leave it out). */
  failures?: Array<{ service: string; code: string; message: string }>;
  forced: boolean;
  status: MemberStatus;
}

/** Every SPEC §2 event code the stream may send. */
export const eventCodes = [
  'service.started',
  'service.paused',
  'service.drained',
  'service.resumed',
  'service.stopping',
  'service.stopped',
  'service.failed',
  'session.forced',
  'guard.refused',
  'agent.up',
  'agent.down',
  'agent.handoff',
] as const;
