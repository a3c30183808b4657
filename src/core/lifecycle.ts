/**
 * Observed states of one service on one member (SPEC §2), after the Windows service model the source uses:
 *
 * ```
 *             start                 pause                  (sessions reach 0: drained)
 *  stopped ──────────▶ running ─────────────▶ paused ──────────────────────────────▶ paused, drained
 *     ▲     (starting)    ▲  ◀─────────────────  │
 *     │                   │        resume        │ stop --graceful / deadline
 *     │                   └──────────────────────┤
 *     └──────────────── stopping ◀───────────────┘  (refuses new; becomes stopped when sessions reach 0)
 * ```
 */
export const ServiceState = {
  stopped: 'stopped',
  starting: 'starting',
  running: 'running',
  paused: 'paused',
  stopping: 'stopping',
} as const;
export type ServiceState = (typeof ServiceState)[keyof typeof ServiceState];

/** SPEC §3. */
export const StartupType = { automatic: 'automatic', manual: 'manual', disabled: 'disabled' } as const;
export type StartupType = (typeof StartupType)[keyof typeof StartupType];
export const startupTypes = Object.values(StartupType);

/** What an operator asked for; the agent drives the observed state towards it. */
export const DesiredRun = { running: 'running', paused: 'paused', stopped: 'stopped' } as const;
export type DesiredRun = (typeof DesiredRun)[keyof typeof DesiredRun];

/**
 * The durable intent for one service on one member (SPEC §3): written to the store before a command
 * returns, and kept by the agent in a local copy.
 */
export interface ServiceIntent {
  run: DesiredRun;
  /** With `run: stopped`: let sessions end first (stop --graceful) instead of ending them now. */
  graceful: boolean;
  /** Epoch ms at which remaining sessions are ended and counted as forced; null for none. */
  deadlineAt: number | null;
  startup: StartupType;
  reason: string;
  by: string;
  at: number;
}

/** A snapshot of one service as its agent last reported it. */
export interface ServiceStatus {
  state: ServiceState;
  accepting: boolean;
  sessions: number;
  /** The same by kind (tcp `connections`, sip `dialogs`); absent in statuses written before it existed. */
  sessionsByKind?: Record<string, number>;
  drained: boolean;
  /** Sessions ended by a deadline or a hard stop since the service last started. */
  forced: number;
  /** Sessions accepted since the agent started. */
  accepted: number;
  /** Upstream connects that failed (the client was closed). */
  upstreamFailures: number;
  /** New sessions turned away while refusing, where the protocol answers (SIP 503/302). */
  refused: number;
  /** Failed accepts on the service's listening sockets (EMFILE, ENFILE, …) since the agent started. */
  acceptErrors?: number;
  /** http: open client connections with nothing in flight (idle keep-alive); a gauge, not sessions. */
  idleConnections?: number;
  /** sip over TCP/TLS/WebSocket: client flows still open (registrations ride on them, SPEC §14); a gauge. */
  flows?: number;
  /** The store revision of the intent this status reflects: the newest intent the agent has applied. */
  intentRevision: number;
  /**
   * The newest intent the agent could not apply (e.g. a resume whose port is taken), while it is still
   * the newest; the agent retries it. `intentRevision` stays at the last intent it did apply.
   */
  applyError?: ApplyError | null;
  /** When the current drain began (pause or graceful stop), epoch ms. */
  drainStartedAt: number | null;
  /** When the drain completed, epoch ms. */
  drainedAt: number | null;
  error: string | null;
  at: number;
}

/** Why an intent is not in effect: SPEC §2 promises that a command returns only once it is. */
export interface ApplyError {
  intentRevision: number;
  code: string;
  message: string;
  at: number;
}

export function isDrained(state: ServiceState, sessions: number): boolean {
  return (state === ServiceState.paused || state === ServiceState.stopping) && sessions === 0;
}

/** SPEC §2: stopped, or paused/stopping and drained. */
export function isReadyForOffline(
  services: ReadonlyArray<Pick<ServiceStatus, 'state' | 'sessions'>>,
): boolean {
  return services.every((s) => s.state === ServiceState.stopped || isDrained(s.state, s.sessions));
}
