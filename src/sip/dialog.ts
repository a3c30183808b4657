import type { SipPeer } from './sip-peer.ts';

/** What a dialog is used for (RFC 3261 §12 for INVITE, RFC 6665 §4 for SUBSCRIBE). */
export const DialogUsage = { invite: 'invite', subscribe: 'subscribe' } as const;
export type DialogUsage = (typeof DialogUsage)[keyof typeof DialogUsage];

/**
 * ```
 *   1xx with a To-tag          2xx (or NOTIFY, RFC 6665 §4.1.2.4)
 *  ───────────────────▶ early ─────────────────────────────────▶ confirmed
 *   (2xx with no early dialog: straight to confirmed)                │
 *                        │ non-2xx final, Timer C,                   │ BYE answered, NOTIFY terminated
 *                        │ forced end                                │ answered, 481/408 (§12.2.1.2),
 *                        ▼                                           ▼ expiry, forced end
 *                    terminated ◀────────────────────────────────────┘
 * ```
 * RFC 3261 §12.1, §12.3, §15; RFC 4028 §10; RFC 6665 §4.1.2.3.
 */
export const DialogState = { early: 'early', confirmed: 'confirmed', terminated: 'terminated' } as const;
export type DialogState = (typeof DialogState)[keyof typeof DialogState];

const allowed: Record<DialogState, readonly DialogState[]> = {
  early: [DialogState.confirmed, DialogState.terminated],
  confirmed: [DialogState.terminated],
  terminated: [],
};

/** One end of a dialog as the proxy saw it, enough to send a request on the other end's behalf. */
export interface DialogParty {
  tag: string;
  /** Its From (caller) or To (callee) value, with its tag: the From of a request sent in its name. */
  nameAddr: string;
  /** Its remote target (Contact URI, RFC 3261 §12.1.1/§12.1.2), where requests to it go. */
  contact: string | undefined;
  /** The highest CSeq number it has used in the dialog (§12.2.1.1). */
  cseq: number | undefined;
  /** Where its messages come from; the connection too, on TCP. */
  peer: SipPeer;
  /** Route values from this proxy towards it (the Record-Route entries on its side), nearest first. */
  route: string[];
}

/**
 * A dialog-creating request this proxy forwarded (INVITE or SUBSCRIBE without a To-tag): the call
 * attempt its responses turn into dialogs. It holds the service's session from the moment it is
 * forwarded — an answered call must never appear after the drain was declared complete — and hands it to
 * the first dialog it creates; each further (forked) dialog opens a session of its own.
 */
export interface CallAttempt {
  readonly key: string;
  readonly usage: DialogUsage;
  readonly callId: string;
  /** The caller as the request described it; `route` is filled from the request's Record-Route. */
  readonly caller: DialogParty;
  /** The forwarded request's Request-URI, To and CSeq: a CANCEL must repeat them (RFC 3261 §9.1). */
  readonly requestUri: string;
  readonly to: string;
  readonly cseq: number;
  /** Route values the forwarded request still carried (a CANCEL repeats them too). */
  readonly routeHeaders: string[];
  readonly ourBranch: string;
  readonly event: string | undefined;
  /** Where the request went; replaced by the source of its responses. */
  calleePeer: SipPeer;
  /** The session opened when the request was forwarded and not yet handed to a dialog or closed. */
  holdsSession: boolean;
  readonly dialogs: Dialog[];
  /** Some response came back (the upstream is there). */
  responded: boolean;
  /** The final status once one has passed; 0 before. */
  finalStatus: number;
  deadline: number;
  /** Ended by Ebb: any dialog it still creates is ended at once. */
  forced: boolean;
}

export class Dialog {
  readonly key: string;
  readonly callId: string;
  readonly usage: DialogUsage;
  readonly caller: DialogParty;
  readonly callee: DialogParty;
  readonly event: string | undefined;
  #state: DialogState;
  /** The call attempt, while the dialog is early. */
  attempt: CallAttempt | undefined;
  /** Whether it holds one of the service's sessions (opened and not yet closed). */
  sessionOpen = false;
  lastActivity: number;
  /** RFC 4028 Session-Expires or RFC 6665 subscription expiry, plus a grace; undefined when none. */
  expiresAt: number | undefined;
  /** Set when a BYE or a terminating NOTIFY is on its way: the dialog ends with its answer, or then. */
  endingAt: number | undefined;
  /**
   * Set when a 2xx to an INVITE passed and its ACK has not: RFC 3261 §13.3.1.4, a 2xx never ACKed
   * within 64*T1 ends the session (the UAS sends a BYE). Undefined once ACKed.
   */
  ackDueAt: number | undefined;
  /** The CSeq of the INVITE whose 2xx was last ACKed: retransmitted 2xx of it arm nothing again. */
  ackedCSeq = 0;

  constructor(init: {
    key: string;
    callId: string;
    usage: DialogUsage;
    caller: DialogParty;
    callee: DialogParty;
    event: string | undefined;
    state: DialogState;
    now: number;
  }) {
    this.key = init.key;
    this.callId = init.callId;
    this.usage = init.usage;
    this.caller = init.caller;
    this.callee = init.callee;
    this.event = init.event;
    this.#state = init.state;
    this.lastActivity = init.now;
    this.expiresAt = undefined;
    this.endingAt = undefined;
    this.ackDueAt = undefined;
  }

  get state(): DialogState {
    return this.#state;
  }

  /** The only place the state changes; an illegal move is a bug in the tracker. */
  transition(to: DialogState): void {
    if (this.#state === to) return;
    if (!allowed[this.#state].includes(to)) {
      throw new Error(`Dialog ${this.key}: illegal transition ${this.#state} -> ${to}`);
    }
    this.#state = to;
  }

  /** The party the request with this From-tag came from; the other one is where it goes. */
  fromCaller(fromTag: string | undefined): boolean {
    return fromTag === this.caller.tag;
  }
}

/** Dialog id (RFC 3261 §12): Call-ID and both tags, in an order that does not depend on direction. */
export function dialogKey(callId: string, tagA: string, tagB: string): string {
  return tagA < tagB ? `${callId}\n${tagA}\n${tagB}` : `${callId}\n${tagB}\n${tagA}`;
}
