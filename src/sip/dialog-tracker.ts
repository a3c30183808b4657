import { Dialog, DialogState, DialogUsage, dialogKey, type CallAttempt, type DialogParty } from './dialog.ts';
import { ExpiryWheel } from './expiry-wheel.ts';
import { parseNameAddr } from './name-addr.ts';
import { getHeader, getHeaderValues } from './sip-headers.ts';
import type { SipMessage, SipRequest, SipResponse } from './sip-message.ts';
import { SipParseError } from './sip-parse-error.ts';
import type { SipPeer } from './sip-peer.ts';
import { SipDialogNoteEvent, type SipDialogNote } from './sip-dialog-note.ts';
import { TIMER_64T1_MS, TIMER_C_MS } from './transaction-table.ts';
import type { MessageEssentials } from './validate-request.ts';

/** Where the tracker reports sessions; the listeners' SessionSink has this shape. */
export interface SipSessionSink {
  opened(): void;
  closed(forced: boolean): void;
  upstreamFailed(): void;
  /** A new session turned away while refusing (503 or 302); for the refused counter. */
  refused?(): void;
}

export interface DialogTrackerOptions {
  sink: SipSessionSink;
  /** A dialog with no request for this long is taken as gone (a BYE was lost). */
  maxIdleMs: number;
  now: number;
  /**
   * A 2xx to an INVITE went unACKed for 64*T1 (RFC 3261 §13.3.1.4): told just before the dialog ends
   * (not forced), so the proxy can send the BYE the UAS should have sent.
   */
  onUnacknowledged?: (dialog: Dialog) => void;
}

/** Grace after a session or subscription interval runs out before the proxy forgets the dialog. */
const EXPIRY_GRACE_MS = TIMER_64T1_MS;

/**
 * Turns what a proxy forwards into sessions: a call attempt per dialog-creating request, the dialogs its
 * responses create (RFC 3261 §12.1), and their end (BYE §15, non-2xx §13.2.2.3, 481/408 §12.2.1.2,
 * RFC 6665 §4.1.2.3 terminated NOTIFY, RFC 4028 §10 expiry, the max idle time). Every session is opened
 * once and closed once, whatever order messages come in.
 */
export class DialogTracker {
  readonly #sink: SipSessionSink;
  readonly #maxIdleMs: number;
  readonly #onUnacknowledged: ((dialog: Dialog) => void) | undefined;
  readonly #dialogs = new Map<string, Dialog>();
  /** Attempts still waiting for a final answer, by server transaction key. */
  readonly #attempts = new Map<string, CallAttempt>();
  /** The same, by Call-ID and caller tag: a NOTIFY may create the dialog before the 2xx (RFC 6665 §4.1.2.4). */
  readonly #attemptsByCaller = new Map<string, CallAttempt>();
  readonly #dialogWheel: ExpiryWheel;
  readonly #attemptWheel: ExpiryWheel;
  #sessions = 0;

  constructor(options: DialogTrackerOptions) {
    this.#sink = options.sink;
    this.#maxIdleMs = options.maxIdleMs;
    this.#onUnacknowledged = options.onUnacknowledged;
    this.#dialogWheel = new ExpiryWheel(options.now);
    this.#attemptWheel = new ExpiryWheel(options.now);
  }

  /** Sessions held now: attempts waiting for their first dialog, plus live dialogs. */
  get sessions(): number {
    return this.#sessions;
  }

  get dialogCount(): number {
    return this.#dialogs.size;
  }

  get attemptCount(): number {
    return this.#attempts.size;
  }

  find(callId: string, tagA: string, tagB: string): Dialog | undefined {
    return this.#dialogs.get(dialogKey(callId, tagA, tagB));
  }

  /** A dialog-creating request is being forwarded: it holds a session from now on. */
  begin(
    init: {
      key: string;
      usage: DialogUsage;
      req: SipRequest;
      ess: MessageEssentials;
      from: SipPeer;
      dest: SipPeer;
      ourBranch: string;
      /** Record-Route values the request carried when it arrived (towards the caller, nearest first). */
      callerRoute: string[];
    },
    now: number,
  ): CallAttempt {
    const { req, ess } = init;
    const attempt: CallAttempt = {
      key: init.key,
      usage: init.usage,
      callId: ess.callId,
      caller: {
        tag: ess.from.params.get('tag') ?? '',
        nameAddr: getHeader(req, 'From')!,
        contact: contactUri(req),
        cseq: ess.cseq.seq,
        peer: init.from,
        route: init.callerRoute,
      },
      requestUri: req.uri,
      to: getHeader(req, 'To')!,
      cseq: ess.cseq.seq,
      ourBranch: init.ourBranch,
      routeHeaders: getHeaderValues(req, 'Route'),
      event: getHeader(req, 'Event'),
      calleePeer: init.dest,
      holdsSession: true,
      dialogs: [],
      responded: false,
      finalStatus: 0,
      deadline: now + TIMER_64T1_MS,
      forced: false,
    };
    this.#attempts.set(attempt.key, attempt);
    this.#attemptsByCaller.set(`${attempt.callId}\n${attempt.caller.tag}`, attempt);
    this.#attemptWheel.schedule(attempt.key, attempt.deadline);
    this.#open();
    return attempt;
  }

  /** The request never left (TCP connect failed): the session ends, not forced. */
  upstreamFailed(attempt: CallAttempt): void {
    if (attempt.finalStatus !== 0) return;
    this.#sink.upstreamFailed();
    this.#finishAttempt(attempt, 503, false);
  }

  /**
   * A response to a dialog-creating request: 1xx with a To-tag makes an early dialog (INVITE), 2xx a
   * confirmed one, a non-2xx final ends the attempt and its early dialogs (RFC 3261 §12.1, §13.2.2).
   * Returns the dialog the response created or confirmed.
   */
  attemptResponse(
    attempt: CallAttempt,
    res: SipResponse,
    ess: MessageEssentials,
    from: SipPeer,
    isSelf: (recordRoute: string) => boolean,
    now: number,
  ): Dialog | undefined {
    const status = res.status;
    const toTag = ess.to.params.get('tag') ?? undefined;
    if (attempt.finalStatus === 0) attempt.calleePeer = from;
    attempt.responded = true;
    if (status < 200) {
      if (attempt.finalStatus !== 0) return undefined;
      this.#extendAttempt(attempt, now + TIMER_C_MS);
      if (status === 100 || !toTag || attempt.usage !== DialogUsage.invite) return undefined;
      const dialog = this.#dialogFor(attempt, res, from, toTag, DialogState.early, isSelf, now);
      dialog.expiresAt = now + TIMER_C_MS;
      this.#schedule(dialog);
      return dialog;
    }
    if (status < 300) {
      const dialog = toTag
        ? this.#dialogFor(attempt, res, from, toTag, DialogState.confirmed, isSelf, now)
        : undefined;
      if (dialog && attempt.usage === DialogUsage.subscribe) this.#subscriptionExpiry(dialog, res, now);
      if (dialog && attempt.usage === DialogUsage.invite) {
        this.#sessionTimer(dialog, res, now);
        this.#awaitAck(dialog, ess.cseq.seq, res, isSelf, now);
      }
      if (attempt.finalStatus === 0) {
        attempt.finalStatus = status;
        this.#forgetAttempt(attempt);
        if (attempt.holdsSession) this.#closeAttemptSession(attempt, false); // a 2xx without To-tag
        // Other forks' early dialogs may still get their own 2xx for 64*T1 (§13.2.2.4), then they go.
        for (const other of attempt.dialogs) {
          if (other === dialog || other.state !== DialogState.early) continue;
          other.expiresAt = now + TIMER_64T1_MS;
          this.#schedule(other);
        }
      }
      return dialog;
    }
    if (attempt.finalStatus === 0) {
      this.#finishAttempt(attempt, status, false);
    } else if (toTag) {
      // A late non-2xx from one fork after another fork's 2xx ends that fork's early dialog only.
      const early = this.#dialogs.get(dialogKey(attempt.callId, attempt.caller.tag, toTag));
      if (early?.state === DialogState.early) this.end(early, false);
    }
    return undefined;
  }

  /** A NOTIFY that arrives before the SUBSCRIBE's 2xx creates the dialog (RFC 6665 §4.1.2.4). */
  notifyBeforeAnswer(
    req: SipRequest,
    ess: MessageEssentials,
    from: SipPeer,
    notifierRoute: string[],
    now: number,
  ): Dialog | undefined {
    const subscriberTag = ess.to.params.get('tag');
    const notifierTag = ess.from.params.get('tag');
    if (!subscriberTag || !notifierTag) return undefined;
    const attempt = this.#attemptsByCaller.get(`${ess.callId}\n${subscriberTag}`);
    if (!attempt || attempt.usage !== DialogUsage.subscribe || attempt.finalStatus !== 0) return undefined;
    attempt.calleePeer = from;
    const callee: DialogParty = {
      tag: notifierTag,
      nameAddr: getHeader(req, 'From')!,
      contact: contactUri(req),
      cseq: undefined,
      peer: from,
      route: notifierRoute,
    };
    return this.#create(attempt, callee, { ...attempt.caller }, DialogState.confirmed, now);
  }

  /**
   * A request inside a known dialog is being forwarded: activity, CSeq, target refresh (§12.2), and
   * whether it ends the dialog once answered (BYE, NOTIFY with Subscription-State: terminated).
   * Returns true for a request whose final answer ends the dialog.
   */
  inDialogRequest(dialog: Dialog, req: SipRequest, ess: MessageEssentials, now: number): boolean {
    const party = dialog.fromCaller(ess.from.params.get('tag') ?? undefined) ? dialog.caller : dialog.callee;
    if (req.method !== 'ACK' && req.method !== 'CANCEL') {
      party.cseq = Math.max(party.cseq ?? 0, ess.cseq.seq);
    }
    dialog.lastActivity = now;
    if (req.method === 'ACK') {
      dialog.ackedCSeq = Math.max(dialog.ackedCSeq, ess.cseq.seq);
      if (dialog.ackDueAt !== undefined) {
        dialog.ackDueAt = undefined;
        this.#schedule(dialog);
      }
    }
    if (isTargetRefresh(req.method)) {
      const contact = contactUri(req);
      if (contact) party.contact = contact;
    }
    let ends = false;
    if (req.method === 'BYE') ends = true;
    if (req.method === 'NOTIFY') {
      const state = parseSubscriptionState(getHeader(req, 'Subscription-State'));
      if (state?.value === 'terminated') ends = true;
      else if (state?.expires !== undefined)
        this.#setExpiry(dialog, now + state.expires * 1000 + EXPIRY_GRACE_MS);
    }
    if (ends && dialog.endingAt === undefined) {
      // If the answer is lost the dialog still ends once the request's transaction would have (Timer F).
      dialog.endingAt = now + TIMER_64T1_MS;
      this.#schedule(dialog);
    }
    return ends;
  }

  /** A final response to a request inside a dialog. */
  inDialogResponse(
    dialog: Dialog,
    method: string,
    ends: boolean,
    res: SipResponse,
    cseq: number,
    isSelf: (recordRoute: string) => boolean,
    now: number,
  ): void {
    const status = res.status;
    if (status < 200 || dialog.state === DialogState.terminated) return;
    // §12.2.1.2: 481 and 408 to a request inside a dialog end it; §15: a BYE ends it whatever the answer.
    if (status === 481 || status === 408 || ends) {
      this.end(dialog, false);
      return;
    }
    if (status >= 300) return;
    if (method === 'INVITE' || method === 'UPDATE') {
      this.#sessionTimer(dialog, res, now);
      if (method === 'INVITE') this.#awaitAck(dialog, cseq, res, isSelf, now);
    } else if (method === 'SUBSCRIBE') {
      this.#subscriptionExpiry(dialog, res, now);
    }
  }

  /**
   * What a front end beside this one saw inside a dialog this one tracks (SPEC §13): the same effect as
   * the request passing here, without its answer. False when the dialog is not here (another's, or gone).
   */
  applyNote(note: SipDialogNote, now: number): boolean {
    const dialog = this.find(note.callId, note.fromTag, note.toTag);
    if (!dialog || dialog.state === DialogState.terminated) return false;
    dialog.lastActivity = now;
    if (note.event === SipDialogNoteEvent.ended) {
      this.end(dialog, false);
    } else if (note.event === SipDialogNoteEvent.ack) {
      dialog.ackedCSeq = Math.max(dialog.ackedCSeq, note.cseq);
      if (dialog.ackDueAt !== undefined) {
        dialog.ackDueAt = undefined;
        this.#schedule(dialog);
      }
    }
    return true;
  }

  /** Ends a dialog and closes its session once. */
  end(dialog: Dialog, forced: boolean): void {
    if (dialog.state === DialogState.terminated) return;
    dialog.transition(DialogState.terminated);
    this.#dialogs.delete(dialog.key);
    if (dialog.attempt) {
      const list = dialog.attempt.dialogs;
      const i = list.indexOf(dialog);
      if (i !== -1) list.splice(i, 1);
      dialog.attempt = undefined;
    }
    if (dialog.sessionOpen) {
      dialog.sessionOpen = false;
      this.#close(forced);
    }
  }

  /** Ebb ends an attempt still waiting for its final answer: its sessions close as forced. */
  forceAttempt(attempt: CallAttempt): void {
    attempt.forced = true;
    this.#finishAttempt(attempt, 0, true);
  }

  /** Attempts still waiting for a final answer, and the dialogs not tied to one. */
  live(): { attempts: CallAttempt[]; dialogs: Dialog[] } {
    const attempts = [...this.#attempts.values()];
    const dialogs = [...this.#dialogs.values()].filter(
      (d) => !(d.state === DialogState.early && d.attempt && d.attempt.finalStatus === 0),
    );
    return { attempts, dialogs };
  }

  /** Expires what is due: attempts (Timer B/C), early dialogs, idle or expired dialogs. */
  sweep(now: number): void {
    this.#attemptWheel.sweep(now, (key) => {
      const attempt = this.#attempts.get(key);
      if (!attempt) return;
      if (attempt.deadline > now) return this.#attemptWheel.schedule(key, attempt.deadline);
      // No answer at all within 64*T1 means the upstream never got it (Timer B, §17.1.1.2).
      if (!attempt.responded) this.#sink.upstreamFailed();
      this.#finishAttempt(attempt, 408, false);
    });
    this.#dialogWheel.sweep(now, (key) => {
      const dialog = this.#dialogs.get(key);
      if (!dialog) return;
      const due = this.#deadline(dialog);
      if (due > now) return this.#dialogWheel.schedule(key, due);
      if (dialog.ackDueAt !== undefined && dialog.ackDueAt <= now && dialog.endingAt === undefined) {
        this.#onUnacknowledged?.(dialog);
      }
      this.end(dialog, false);
    });
  }

  clear(): void {
    this.#dialogs.clear();
    this.#attempts.clear();
    this.#attemptsByCaller.clear();
    this.#dialogWheel.clear();
    this.#attemptWheel.clear();
  }

  #dialogFor(
    attempt: CallAttempt,
    res: SipResponse,
    from: SipPeer,
    toTag: string,
    state: DialogState,
    isSelf: (recordRoute: string) => boolean,
    now: number,
  ): Dialog {
    const existing = this.#dialogs.get(dialogKey(attempt.callId, attempt.caller.tag, toTag));
    const routes = splitRecordRoute(getHeaderValues(res, 'Record-Route'), isSelf, attempt.caller.route);
    if (existing) {
      if (existing.state === DialogState.early && state === DialogState.confirmed) {
        existing.transition(DialogState.confirmed);
        existing.attempt = undefined;
        existing.expiresAt = undefined;
        const i = attempt.dialogs.indexOf(existing);
        if (i !== -1) attempt.dialogs.splice(i, 1);
      }
      // §12.1.2: the route set and remote target come from the response that confirms the dialog.
      existing.callee.contact = contactUri(res) ?? existing.callee.contact;
      existing.callee.route = routes.callee;
      existing.caller.route = routes.caller;
      existing.lastActivity = now;
      this.#schedule(existing);
      return existing;
    }
    const callee: DialogParty = {
      tag: toTag,
      nameAddr: getHeader(res, 'To')!,
      contact: contactUri(res),
      cseq: undefined,
      peer: from,
      route: routes.callee,
    };
    return this.#create(attempt, callee, { ...attempt.caller, route: routes.caller }, state, now);
  }

  #create(
    attempt: CallAttempt,
    callee: DialogParty,
    caller: DialogParty,
    state: DialogState,
    now: number,
  ): Dialog {
    const dialog = new Dialog({
      key: dialogKey(attempt.callId, caller.tag, callee.tag),
      callId: attempt.callId,
      usage: attempt.usage,
      caller,
      callee,
      event: attempt.event,
      state,
      now,
    });
    this.#dialogs.set(dialog.key, dialog);
    if (attempt.holdsSession) {
      attempt.holdsSession = false; // the attempt's session becomes the dialog's
    } else {
      this.#open();
    }
    dialog.sessionOpen = true;
    if (state === DialogState.early) {
      dialog.attempt = attempt;
      attempt.dialogs.push(dialog);
    }
    this.#schedule(dialog);
    return dialog;
  }

  /** RFC 4028 §7.2/§8: the 2xx sets the session interval; one without Session-Expires turns the timer off. */
  #sessionTimer(dialog: Dialog, res: SipResponse, now: number): void {
    const se = parseDeltaSeconds(getHeader(res, 'Session-Expires'));
    dialog.expiresAt = se === undefined ? undefined : now + se * 1000 + EXPIRY_GRACE_MS;
    this.#schedule(dialog);
  }

  #subscriptionExpiry(dialog: Dialog, res: SipResponse, now: number): void {
    const expires = parseDeltaSeconds(getHeader(res, 'Expires'));
    if (expires === undefined) return;
    // Expires: 0 is an unsubscription: the terminating NOTIFY follows; give it 64*T1.
    this.#setExpiry(dialog, now + (expires === 0 ? 0 : expires * 1000) + EXPIRY_GRACE_MS);
  }

  /**
   * RFC 3261 §13.3.1.4 / §17.2.1: the ACK for this 2xx must come within 64*T1 (its retransmissions do
   * not move the deadline). Armed only when the 2xx kept our Record-Route: otherwise the ACK does not
   * pass through here and its absence means nothing.
   */
  #awaitAck(
    dialog: Dialog,
    cseq: number,
    res: SipResponse,
    isSelf: (recordRoute: string) => boolean,
    now: number,
  ): void {
    if (dialog.ackDueAt !== undefined || cseq <= dialog.ackedCSeq) return;
    if (dialog.state !== DialogState.confirmed) return;
    if (!getHeaderValues(res, 'Record-Route').some(isSelf)) return;
    dialog.ackDueAt = now + TIMER_64T1_MS;
    this.#schedule(dialog);
  }

  #setExpiry(dialog: Dialog, at: number): void {
    dialog.expiresAt = at;
    this.#schedule(dialog);
  }

  #deadline(dialog: Dialog): number {
    return Math.min(
      dialog.lastActivity + this.#maxIdleMs,
      dialog.expiresAt ?? Number.POSITIVE_INFINITY,
      dialog.endingAt ?? Number.POSITIVE_INFINITY,
      dialog.ackDueAt ?? Number.POSITIVE_INFINITY,
    );
  }

  /** Files the dialog under its current deadline; later deadlines are picked up lazily by `sweep`. */
  #schedule(dialog: Dialog): void {
    this.#dialogWheel.schedule(dialog.key, this.#deadline(dialog));
  }

  #extendAttempt(attempt: CallAttempt, at: number): void {
    attempt.deadline = Math.max(attempt.deadline, at);
  }

  /** The attempt is over: its early dialogs end, and the session it still held closes. */
  #finishAttempt(attempt: CallAttempt, status: number, forced: boolean): void {
    if (attempt.finalStatus === 0) attempt.finalStatus = status;
    this.#forgetAttempt(attempt);
    for (const dialog of [...attempt.dialogs])
      if (dialog.state === DialogState.early) this.end(dialog, forced);
    if (attempt.holdsSession) this.#closeAttemptSession(attempt, forced);
  }

  #forgetAttempt(attempt: CallAttempt): void {
    this.#attempts.delete(attempt.key);
    const byCaller = `${attempt.callId}\n${attempt.caller.tag}`;
    if (this.#attemptsByCaller.get(byCaller) === attempt) this.#attemptsByCaller.delete(byCaller);
  }

  #closeAttemptSession(attempt: CallAttempt, forced: boolean): void {
    attempt.holdsSession = false;
    this.#close(forced);
  }

  #open(): void {
    this.#sessions++;
    this.#sink.opened();
  }

  #close(forced: boolean): void {
    this.#sessions--;
    this.#sink.closed(forced);
  }
}

/**
 * Splits a 2xx's Record-Route (RFC 3261 §12.1.2) at this proxy's own entry: the entries above it lead to
 * the callee (reversed, so the nearest comes first), those below it to the caller. Without an own entry
 * (the UAS did not copy Record-Route) the callee side is empty and the caller side is what the request had.
 */
export function splitRecordRoute(
  values: string[],
  isSelf: (recordRoute: string) => boolean,
  callerFallback: string[],
): { callee: string[]; caller: string[] } {
  const at = values.findIndex(isSelf);
  if (at === -1) return { callee: [], caller: callerFallback };
  return { callee: values.slice(0, at).reverse(), caller: values.slice(at + 1) };
}

/** The first Contact's URI, or undefined (absent, `*`, unparsable). */
export function contactUri(msg: SipMessage): string | undefined {
  const value = getHeader(msg, 'Contact');
  if (value === undefined || value.trim() === '*') return undefined;
  try {
    return parseNameAddr(value, 'Contact').uri;
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}

/** Requests that may change the remote target (RFC 3261 §12.2; RFC 3311 UPDATE; RFC 6665 §4.1.2). */
function isTargetRefresh(method: string): boolean {
  return method === 'INVITE' || method === 'UPDATE' || method === 'SUBSCRIBE' || method === 'NOTIFY';
}

/** `1800;refresher=uac` → 1800; undefined when absent or not a number. */
export function parseDeltaSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d{1,10})/.exec(value);
  return m ? Number(m[1]) : undefined;
}

/** RFC 6665 §8.2.3 Subscription-State: `active;expires=600`, `terminated;reason=timeout`. */
export function parseSubscriptionState(
  value: string | undefined,
): { value: string; expires: number | undefined } | undefined {
  if (value === undefined) return undefined;
  const [state, ...params] = value.split(';');
  let expires: number | undefined;
  for (const p of params) {
    const m = /^\s*expires\s*=\s*(\d{1,10})\s*$/i.exec(p);
    if (m) expires = Number(m[1]);
  }
  return { value: state!.trim().toLowerCase(), expires };
}
