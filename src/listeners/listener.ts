import type { EbbError } from '../core/index.ts';
import type { SipDialogNote } from '../sip/index.ts';
import type { ListenerStats } from './listener-stats.ts';

/**
 * Where a listener is in its life. Only `ListenerLifecycle.transition()` changes it:
 *
 * ```
 *              open(false)             refuse()
 *   closed ────────────────▶ accepting ─────────▶ refusing
 *    │  ▲                        │    ◀─────────   │   ▲
 *    │  │                        │     accept()    │   │
 *    │  │                        ▼                 │   │
 *    │  └─(last session gone)─ closing ◀───────────┘   │
 *    │                   close() / destroy()           │
 *    └──────────────────── open(true) ─────────────────┘
 * ```
 *
 * `closing`: no new sessions, existing ones go on until they end (close) or are ended (destroy). What
 * refusing means is the protocol's (SPEC §4.2): tcp closes its listening socket, sip answers 503.
 */
export const ListenerState = {
  closed: 'closed',
  accepting: 'accepting',
  refusing: 'refusing',
  closing: 'closing',
} as const;
export type ListenerState = (typeof ListenerState)[keyof typeof ListenerState];

/** What a listener tells its owner (the service runtime). */
export interface ListenerEvents {
  /**
   * `stats()` changed: a session opened or closed, a counter moved. Called synchronously with the change
   * (drain detection depends on it), so it must be cheap: the owner reads `stats()` and coalesces.
   * `urgent`: a reader should see it now (a failure), not at the next coalesced write.
   */
  onChange(urgent: boolean): void;
  /** A failure the listener survives (accept errors, socket errors), throttled per errno; for logs. */
  onError?(err: EbbError): void;
  /**
   * Something its siblings must know: listeners of the same config elsewhere (the other worker threads
   * sharing its port, the process it hands over to or takes over from; SPEC §13) may hold the session
   * it concerns. The owner passes it to each of them through `applyNote`, in order; none is answered.
   */
  onNote?(note: ListenerNote): void;
}

/**
 * What one listener tells the listeners of the same config elsewhere (`onNote` → `applyNote`): plain
 * JSON, meaningful without threads — "a listener like you saw this". Today one kind:
 * `sip-dialog`, a request inside a SIP dialog the sender does not track, which it routed (RFC 3261
 * §16.12); the one that tracks the dialog counts its ACK, activity or end (see `SipDialogNote`).
 */
export type ListenerNote = SipDialogNote;

/**
 * One front end of a service: listens, turns new sessions away while refusing, keeps existing sessions
 * flowing, and ends them when told. Counts come out as a plain snapshot (`stats()`), after undici's
 * `PoolStats`.
 */
export interface Listener {
  /** `tcp 127.0.0.11:7000 → builtin:echo`, for logs and errors. */
  readonly description: string;
  readonly state: ListenerState;
  stats(): ListenerStats;
  /**
   * closed → accepting, or → refusing (takes no new sessions from the start). Idempotent; rejects with
   * ListenError (the port), or InvalidTransitionError when open the other way or closing.
   */
  open(refusing: boolean): Promise<void>;
  /**
   * accepting → refusing: resolves once every new session is refused; existing ones continue. Idempotent;
   * rejects with InvalidTransitionError when closed or closing.
   */
  refuse(): Promise<void>;
  /** refusing → accepting. Idempotent; rejects with ListenError (port taken) or InvalidTransitionError. */
  accept(): Promise<void>;
  /**
   * Ends every session now, politely where the protocol has a way (TCP FIN then reset, SIP BYE with
   * Reason 503), each counted as forced; the state does not change (a paused SIP service still answers
   * 503). Resolves with how many it ended.
   */
  endSessions(): Promise<number>;
  /**
   * → closing → closed: stops taking sessions and resolves once the existing ones have ended by
   * themselves (undici `close()`: let work finish). The same promise however often it is called.
   */
  close(): Promise<void>;
  /**
   * Starts `close()` and resolves as soon as no new session is taken; the sessions go on, and `close()`
   * resolves once they have ended. A process handing over to its successor, bound beside it, waits for
   * this before the successor takes the member over (SPEC §13).
   */
  closeToNew(): Promise<void>;
  /**
   * → closing → closed now: stops taking sessions and ends the existing ones, counted as forced; during a
   * pending `close()` it ends what is left. Resolves with how many it ended; the same promise however
   * often it is called.
   */
  destroy(): Promise<number>;
  /**
   * For a listener whose sessions are not Ebb's to keep (`mode: kernel`: the server holds them): the agent
   * goes away, and instead of `destroy()` the listener stops its own work and leaves the sessions, and
   * whatever it set in the kernel, as they are. Absent on listeners whose sessions live in Ebb.
   */
  detach?(): Promise<void>;
  /**
   * A note from a listener of the same config elsewhere (see `ListenerEvents.onNote`): applied to the
   * session it names when that session is here, ignored otherwise, also while closing (its sessions are
   * still counted) and when closed. Absent on kinds that emit none.
   */
  applyNote?(note: ListenerNote): void;
  /**
   * A disagreement found after the command that set it (a kernel rule another program removed), shown
   * as the service's error until it is repaired; null or absent when there is none.
   */
  readonly fault?: string | null;
}
