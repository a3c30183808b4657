import { buildResponse } from './build-response.ts';
import { DialogState, DialogUsage, type Dialog } from './dialog.ts';
import {
  cancelFor,
  MAINTENANCE_REASON,
  ownVia,
  requestToParty,
  type OutgoingRequest,
} from './dialog-requests.ts';
import { DialogTracker, parseSubscriptionState, type SipSessionSink } from './dialog-tracker.ts';
import { formatHostPort } from './host-port.ts';
import {
  addRecordRoute,
  decrementMaxForwards,
  prependVia,
  removeTopRoute,
  removeTopVia,
  topVia,
} from './message-mutations.ts';
import { parseNameAddr } from './name-addr.ts';
import { newBranch } from './sip-ids.ts';
import { getHeader, getHeaderValues, removeHeader, addHeader } from './sip-headers.ts';
import type { SipHeader, SipMessage, SipRequest, SipResponse } from './sip-message.ts';
import { SipParseError } from './sip-parse-error.ts';
import { SipDialogNoteEvent, type SipDialogNote } from './sip-dialog-note.ts';
import {
  isSelfAddress,
  isSelfUri,
  samePeer,
  uriTarget,
  viaTarget,
  type SipPeer,
  type SipSelf,
  type SipSender,
  type SipTransportName,
} from './sip-peer.ts';
import { parseSipUri } from './sip-uri.ts';
import {
  BranchDeriver,
  TransactionTable,
  transactionKey,
  type ServerTransaction,
} from './transaction-table.ts';
import { UacRequests } from './uac-requests.ts';
import { serializeMessage } from './serialize-message.ts';
import { validateRequest, validateResponse, type MessageEssentials } from './validate-request.ts';
import { BRANCH_MAGIC_COOKIE } from './sip-ids.ts';
import { replyTarget, sharedOf, stampReceived, stampVia } from './via-received.ts';

export interface SipProxyCoreOptions {
  /** The front end's own address: its Via sent-by and Record-Route. */
  self: SipSelf;
  /** The SIP server it fronts: where out-of-dialog requests from clients go. */
  upstream: { host: string; port: number };
  sender: SipSender;
  sink: SipSessionSink;
  /** Seconds for Retry-After on a 503 while refusing (RFC 3261 §21.5.4). */
  retryAfter: number;
  /** While refusing: an accepting member to send callers to with a 302, or undefined for a 503. */
  redirect?: () => { host: string } | undefined;
  /** A dialog with no request for this long is forgotten (its BYE was lost). */
  maxIdleMs: number;
  /** How long `endSessions()` waits for the answers to its BYEs. */
  endWaitMs?: number;
  now?: () => number;
  /** A bug while handling one message: the message is dropped and this is told. */
  onError?: (err: unknown) => void;
  /**
   * A request inside a dialog this core does not track passed through (SPEC §13): front ends beside it
   * (threads sharing the port, a process handing over) are told, so the one tracking it counts it.
   */
  onNote?: (note: SipDialogNote) => void;
}

/** Counters for tests and benchmarks (a plain snapshot). */
export interface SipProxyStats {
  requests: number;
  responses: number;
  forwarded: number;
  answered: number;
  refused: number;
  retransmissions: number;
  dropped: number;
  transactions: number;
  dialogs: number;
  attempts: number;
  sessions: number;
}

/**
 * RFC 3261 §18.1.1: with the path MTU unknown, a request larger than 1300 bytes must go over a
 * congestion-controlled transport (TCP); if the connection cannot be made it is retried over UDP, which
 * carries at most 65,507 bytes (IPv4).
 */
export const UDP_TCP_THRESHOLD_BYTES = 1300;
export const UDP_MAX_DATAGRAM_BYTES = 65_507;

/** RFC 3326 Reason of the BYEs for a call whose 2xx was never ACKed (RFC 3261 §13.3.1.4). */
export const NO_ACK_REASON = 'SIP;cause=408;text="no ACK for the 2xx"';

const ALLOW =
  'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, INFO, UPDATE, PRACK, MESSAGE';

/**
 * The SIP front end without sockets: a record-routing proxy in front of one upstream (RFC 3261 §16) that
 * tracks transactions to absorb retransmissions (§17.2) and dialogs to count sessions (§12), and that
 * turns new sessions away while the service refuses (SPEC §4.2). Transports give it parsed messages with
 * their source and send what it hands back.
 *
 * Retransmissions: a request already seen is answered with the last response sent for it; while no
 * response has come, a UDP retransmission is relayed (the client's timers drive the next hop's), so the
 * proxy needs no timers of its own for forwarded requests. Its branches are derived from the client's
 * (§16.11): the CANCEL and the ACK for a non-2xx answer reach the next hop with the INVITE's branch.
 */
export class SipProxyCore {
  /** While true, dialog-creating requests and REGISTER get 503 (or 302); everything else flows. */
  refusing = false;
  readonly #o: SipProxyCoreOptions;
  readonly #self: SipSelf;
  readonly #now: () => number;
  readonly #transactions: TransactionTable;
  readonly #tracker: DialogTracker;
  readonly #branches = new BranchDeriver();
  readonly #uac: UacRequests;
  readonly #recordRoute: string;
  readonly #sweep: NodeJS.Timeout;
  readonly #isSelfRoute = (value: string): boolean => {
    const uri = nameAddrUri(value);
    return uri !== undefined && isSelfUri(uri, this.#self);
  };
  readonly #stats = {
    requests: 0,
    responses: 0,
    forwarded: 0,
    answered: 0,
    refused: 0,
    retransmissions: 0,
    dropped: 0,
  };

  constructor(options: SipProxyCoreOptions) {
    this.#o = options;
    this.#self = options.self;
    this.#now = options.now ?? Date.now;
    const now = this.#now();
    this.#transactions = new TransactionTable(now);
    this.#tracker = new DialogTracker({
      sink: options.sink,
      maxIdleMs: options.maxIdleMs,
      now,
      onUnacknowledged: (dialog) => void Promise.all(this.#byeBoth(dialog, NO_ACK_REASON)),
    });
    this.#uac = new UacRequests(options.sender, options.self.transport !== 'udp');
    const hp = formatHostPort(options.self.host, options.self.port);
    // RFC 3261 §16.6 step 4: a loose-routing (lr) URI naming this front end, so in-dialog requests come back.
    this.#recordRoute = `<sip:${hp};transport=${options.self.transport};lr>`;
    this.#sweep = setInterval(() => this.sweep(this.#now()), 1000);
    this.#sweep.unref();
  }

  get sessions(): number {
    return this.#tracker.sessions;
  }

  stats(): SipProxyStats {
    return {
      ...this.#stats,
      transactions: this.#transactions.size,
      dialogs: this.#tracker.dialogCount,
      attempts: this.#tracker.attemptCount,
      sessions: this.#tracker.sessions,
    };
  }

  /** One parsed message from a transport. Never throws. */
  receive(msg: SipMessage, from: SipPeer): void {
    try {
      if (msg.kind === 'request') this.#request(msg, from);
      else this.#response(msg, from);
    } catch (err) {
      if (err instanceof SipParseError) this.receiveError(err, from);
      else {
        this.#stats.dropped++;
        this.#o.onError?.(err);
      }
    }
  }

  /**
   * A message that did not parse or validate (docs/sip-parser.md): a request whose head and top Via are
   * readable gets the error's status; anything else, and every response, is dropped (§18.3).
   */
  receiveError(err: SipParseError, from: SipPeer): void {
    this.#stats.dropped++;
    const head = err.head;
    if (!head || head.kind !== 'request' || err.status === undefined || head.method === 'ACK') return;
    try {
      const via = topVia(head);
      if (!via) return;
      const res = buildResponse(head, err.status, { reason: reasonFor(err) });
      this.#o.sender.send(replyTarget(stampVia(via, from), from), serializeMessage(res));
    } catch (e) {
      if (!(e instanceof SipParseError)) this.#o.onError?.(e);
    }
  }

  /**
   * Ends every session now (deadline, hard stop): a BYE to both parties of each call with RFC 3326
   * `Reason: SIP;cause=503;text="maintenance"`, a terminating NOTIFY and an unSUBSCRIBE for each
   * subscription, a CANCEL for each call still ringing. Each is counted as forced at once; the promise
   * waits (bounded) for the answers so they are on the wire before the transport closes.
   */
  async endSessions(): Promise<number> {
    const before = this.#tracker.sessions;
    const { attempts, dialogs } = this.#tracker.live();
    const answers: Promise<number>[] = [];
    const reason: SipHeader = { name: 'Reason', value: MAINTENANCE_REASON };
    for (const attempt of attempts) {
      if (attempt.usage === DialogUsage.invite) {
        answers.push(this.#sendOwn(cancelFor(attempt, this.#self, [reason]), attempt.ourBranch));
      }
      this.#tracker.forceAttempt(attempt);
    }
    for (const dialog of dialogs) answers.push(...this.#endDialog(dialog));
    const ended = before - this.#tracker.sessions;
    if (answers.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(answers),
        new Promise((resolve) => (timer = setTimeout(resolve, this.#o.endWaitMs ?? 2000))),
      ]);
      clearTimeout(timer);
    }
    return ended;
  }

  /**
   * Connections that carry something (SPEC §14): a party of a call or subscription, a call being set
   * up, a request still waiting for its final answer. A flow not in here can be closed.
   */
  busyConnections(): Set<number> {
    const busy = new Set<number>();
    const { attempts, dialogs } = this.#tracker.live();
    for (const a of attempts) {
      if (a.caller.peer.connection !== undefined) busy.add(a.caller.peer.connection);
      for (const d of a.dialogs) addParties(busy, d);
    }
    for (const d of dialogs) addParties(busy, d);
    this.#transactions.pendingConnections(busy);
    return busy;
  }

  /**
   * A note from a front end beside this one (see `onNote`): applied to the dialog when it is tracked
   * here, ignored otherwise. True when it was.
   */
  applyNote(note: SipDialogNote): boolean {
    return this.#tracker.applyNote(note, this.#now());
  }

  /** Expires transactions and dialogs; runs every second on its own, callable by tests. */
  sweep(now: number): void {
    this.#transactions.sweep(now);
    this.#tracker.sweep(now);
  }

  /** Stops timers and forgets everything, without counting sessions closed (the listener ends them first). */
  close(): void {
    clearInterval(this.#sweep);
    this.#uac.close();
    this.#transactions.clear();
    this.#tracker.clear();
  }

  // ── requests ────────────────────────────────────────────────────────────────────────────────

  #request(req: SipRequest, from: SipPeer): void {
    this.#stats.requests++;
    const now = this.#now();
    const ess = validateRequest(req);
    const via = ess.vias[0]!;
    stampReceived(req, via, from);
    if (req.method === 'ACK') return this.#ack(req, ess, from, now);
    const key = transactionKey(req.method, ess);
    const txn = this.#transactions.get(key);
    if (txn) return this.#retransmission(txn, req, ess, from);
    if (req.method === 'CANCEL') return this.#cancel(req, ess, from, key, now);
    const toTag = ess.to.params.get('tag') ?? undefined;
    this.#removeOwnRoutes(req);
    if (toTag === undefined && req.method === 'OPTIONS' && this.#addressedToUs(req)) {
      // SPEC §4.2: load balancers probe the front end itself with OPTIONS; paused means 503.
      const headers = [
        { name: 'Allow', value: ALLOW },
        { name: 'Accept', value: 'application/sdp' },
      ];
      return this.refusing
        ? this.#answer(req, ess, from, key, 503, { retryAfter: this.#o.retryAfter }, now)
        : this.#answer(req, ess, from, key, 200, { headers }, now);
    }
    if (ess.maxForwards === 0) return this.#answer(req, ess, from, key, 483, {}, now); // §16.3 step 3
    if (toTag === undefined && isNewSession(req.method) && this.refusing)
      return this.#refuse(req, ess, from, key, now);
    this.#forward(req, ess, from, key, toTag, now);
  }

  #forward(
    req: SipRequest,
    ess: MessageEssentials,
    from: SipPeer,
    key: string,
    toTag: string | undefined,
    now: number,
  ): void {
    const fromTag = ess.from.params.get('tag') ?? undefined;
    let dialog = toTag === undefined ? undefined : this.#tracker.find(ess.callId, fromTag ?? '', toTag);
    const creates = toTag === undefined && (req.method === 'INVITE' || req.method === 'SUBSCRIBE');
    const arrivedRoute = creates || req.method === 'NOTIFY' ? getHeaderValues(req, 'Record-Route') : [];
    let dest = this.#nextHop(req, dialog, { from: fromTag, to: toTag }, from);
    if (!dest) return this.#answer(req, ess, from, key, toTag === undefined ? 404 : 481, {}, now);
    const ourBranch = this.#branches.derive(ess);
    let bytes = this.#prepare(req, ourBranch, toTag !== undefined, dest);
    // §18.1.1: too large for UDP towards the upstream: over TCP (the UDP copy is the fallback).
    let udp: { dest: SipPeer; bytes: Buffer } | undefined;
    if (
      this.#viaTransport(dest) === 'udp' &&
      bytes.length > UDP_TCP_THRESHOLD_BYTES &&
      !this.#fromUpstream(from)
    ) {
      udp = { dest, bytes };
      dest = { ...dest, transport: 'tcp' };
      removeTopVia(req);
      prependVia(req, ownVia(this.#self, ourBranch, 'tcp'));
      bytes = serializeMessage(req);
    }

    let attempt;
    let ends = false;
    if (creates) {
      const usage = req.method === 'INVITE' ? DialogUsage.invite : DialogUsage.subscribe;
      attempt = this.#tracker.begin(
        { key, usage, req, ess, from, dest, ourBranch, callerRoute: arrivedRoute },
        now,
      );
    } else if (dialog) {
      ends = this.#tracker.inDialogRequest(dialog, req, ess, now);
    } else if (req.method === 'NOTIFY' && toTag !== undefined) {
      dialog = this.#tracker.notifyBeforeAnswer(req, ess, from, arrivedRoute, now);
      if (dialog) ends = this.#tracker.inDialogRequest(dialog, req, ess, now);
    }
    // Kept on the transaction with the event a 481/408 answer would mean; sent now with the request's own.
    // A request that goes on along a Route (after ours) reaches whoever record-routed it — the front end
    // that tracks the dialog among them — which counts it itself: a note too would count it before the
    // request got there, and a front end handing over could exit under its own last BYE.
    const foreign =
      !creates && !dialog && toTag !== undefined && !alongRoute(req)
        ? this.#noteFor(ess, toTag, SipDialogNoteEvent.ended)
        : undefined;
    const txn = this.#transactions.create(
      { key, method: req.method, source: from, ourBranch, dest, attempt, dialog, ends, foreign },
      now,
    );
    this.#stats.forwarded++;
    this.#o.sender.send(dest, bytes, () => (udp ? this.#overUdp(txn, req, udp) : this.#sendFailed(txn, req)));
    if (foreign) this.#o.onNote?.({ ...foreign, event: foreignEvent(req) });
  }

  /** What siblings are told of a request inside a dialog not tracked here, when anyone listens. */
  #noteFor(ess: MessageEssentials, toTag: string, event: SipDialogNoteEvent): SipDialogNote | undefined {
    if (!this.#o.onNote) return undefined;
    const fromTag = ess.from.params.get('tag') ?? '';
    return { kind: 'sip-dialog', callId: ess.callId, fromTag, toTag, cseq: ess.cseq.seq, event };
  }

  /**
   * §18.1.1: the TCP connection for a large request could not be made: retried over UDP when it fits in
   * a datagram; otherwise the client gets 513 Message Too Large.
   */
  #overUdp(txn: ServerTransaction, req: SipRequest, udp: { dest: SipPeer; bytes: Buffer }): void {
    if (txn.lastStatus >= 200) return;
    if (udp.bytes.length > UDP_MAX_DATAGRAM_BYTES) return this.#sendFailed(txn, req, 513);
    txn.dest = udp.dest;
    if (txn.attempt) txn.attempt.calleePeer = udp.dest;
    this.#o.sender.send(udp.dest, udp.bytes, () => this.#sendFailed(txn, req));
  }

  /** RFC 3261 §16.6: Max-Forwards, Record-Route on dialog-creating requests, our Via (steps 3, 4, 8). */
  #prepare(req: SipRequest, ourBranch: string, inDialog: boolean, dest: SipPeer): Buffer {
    decrementMaxForwards(req);
    const m = req.method;
    if ((!inDialog && (m === 'INVITE' || m === 'SUBSCRIBE' || m === 'REFER')) || m === 'NOTIFY') {
      addRecordRoute(req, this.#recordRoute);
    }
    prependVia(req, ownVia(this.#self, ourBranch, this.#viaTransport(dest)));
    return serializeMessage(req);
  }

  /** The transport a message to `dest` goes over: a UDP listener's TCP connections (§18.1.1) say TCP. */
  #viaTransport(dest: SipPeer): SipTransportName {
    const own = this.#o.sender.transportOf?.(dest);
    if (own) return own;
    if (this.#self.transport !== 'udp') return this.#self.transport;
    return dest.transport ?? (dest.connection !== undefined ? 'tcp' : 'udp');
  }

  #fromUpstream(from: SipPeer): boolean {
    return samePeer(from, this.#o.upstream);
  }

  /**
   * Where a request goes (§16.5-16.6). A request from a client that is not inside a dialog goes to the
   * upstream, whatever Route it carries (the front end is no open relay; the upstream deals with any
   * pre-loaded Route). Otherwise a Route left after our own is followed (loose routing); inside a known
   * dialog it goes to the other party (its remote target, over its connection on TCP); a request from the
   * upstream with neither goes to its Request-URI.
   */
  #nextHop(
    req: SipRequest,
    dialog: Dialog | undefined,
    tags: { from: string | undefined; to: string | undefined },
    from: SipPeer,
  ): SipPeer | undefined {
    const fromUpstream = samePeer(from, this.#o.upstream);
    if (tags.to === undefined && !fromUpstream) return this.#o.upstream;
    const route = getHeader(req, 'Route');
    if (route !== undefined) {
      const t = uriTarget(nameAddrUri(route) ?? '');
      if (t && !isSelfAddress(t, this.#self)) return t;
    }
    if (dialog) {
      const target = dialog.fromCaller(tags.from) ? dialog.callee : dialog.caller;
      const t = uriTarget(req.uri);
      if (t && !isSelfAddress(t, this.#self)) return { ...t, connection: target.peer.connection };
      return {
        host: target.peer.host,
        port: target.peer.port,
        connection: target.peer.connection,
        ...sharedOf(target.peer),
      };
    }
    if (!fromUpstream) return this.#o.upstream;
    const t = uriTarget(req.uri);
    return t && !isSelfAddress(t, this.#self) ? t : undefined;
  }

  #ack(req: SipRequest, ess: MessageEssentials, from: SipPeer, now: number): void {
    const txn = this.#transactions.get(transactionKey('ACK', ess));
    // §17.2.1: the ACK for a final answer made here ends here.
    if (txn?.local) return;
    this.#removeOwnRoutes(req);
    let dest: SipPeer | undefined;
    if (txn && txn.lastStatus >= 300 && txn.dest) {
      dest = txn.dest; // ACK for a forwarded non-2xx: hop by hop along the INVITE's path (§16.11)
    } else {
      const fromTag = ess.from.params.get('tag') ?? undefined;
      const toTag = ess.to.params.get('tag') ?? undefined;
      const dialog = toTag === undefined ? undefined : this.#tracker.find(ess.callId, fromTag ?? '', toTag);
      if (dialog) this.#tracker.inDialogRequest(dialog, req, ess, now);
      else if (toTag !== undefined && !alongRoute(req)) {
        const note = this.#noteFor(ess, toTag, SipDialogNoteEvent.ack);
        if (note) this.#o.onNote?.(note);
      }
      dest = this.#nextHop(req, dialog, { from: fromTag, to: toTag }, from);
    }
    if (!dest) {
      this.#stats.dropped++;
      return;
    }
    decrementMaxForwards(req);
    prependVia(req, ownVia(this.#self, this.#branches.derive(ess), this.#viaTransport(dest)));
    this.#stats.forwarded++;
    this.#o.sender.send(dest, serializeMessage(req));
  }

  #retransmission(txn: ServerTransaction, req: SipRequest, ess: MessageEssentials, from: SipPeer): void {
    this.#stats.retransmissions++;
    if (txn.lastResponse && txn.responseTo) {
      this.#o.sender.send({ ...txn.responseTo, connection: from.connection }, txn.lastResponse);
      return;
    }
    // Nothing back yet: on UDP relay it, so the client's retransmission timer covers the next hop too.
    if (from.connection !== undefined || !txn.dest || !txn.ourBranch) return;
    if (this.#viaTransport(txn.dest) !== 'udp') return; // it went on over TCP (§18.1.1): reliable
    this.#removeOwnRoutes(req);
    const inDialog = (ess.to.params.get('tag') ?? undefined) !== undefined;
    const bytes = this.#prepare(req, txn.ourBranch, inDialog, txn.dest);
    this.#o.sender.send(txn.dest, bytes);
  }

  /** CANCEL (§9.2, §16.10): answered here when the INVITE was; else passed on with the INVITE's branch. */
  #cancel(req: SipRequest, ess: MessageEssentials, from: SipPeer, key: string, now: number): void {
    const invite = this.#transactions.get(transactionKey('INVITE', ess));
    if (!invite) return this.#answer(req, ess, from, key, 481, {}, now);
    if (invite.local || invite.lastStatus >= 200 || !invite.dest || !invite.ourBranch) {
      return this.#answer(req, ess, from, key, 200, {}, now);
    }
    this.#removeOwnRoutes(req);
    decrementMaxForwards(req);
    prependVia(req, ownVia(this.#self, invite.ourBranch, this.#viaTransport(invite.dest)));
    const txn = this.#transactions.create(
      { key, method: 'CANCEL', source: from, ourBranch: invite.ourBranch, dest: invite.dest, ends: false },
      now,
    );
    this.#stats.forwarded++;
    this.#o.sender.send(invite.dest, serializeMessage(req), () => this.#sendFailed(txn, req));
  }

  /** SPEC §4.2: a new session while refusing gets 302 to an accepting member, or 503 with Retry-After. */
  #refuse(req: SipRequest, ess: MessageEssentials, from: SipPeer, key: string, now: number): void {
    this.#stats.refused++;
    this.#o.sink.refused?.();
    const other = this.#o.redirect?.();
    if (other) {
      const user = uriUser(req.uri);
      const hp = formatHostPort(other.host, this.#self.sharedPort ?? this.#self.port);
      const contact = `<sip:${user === undefined ? '' : `${user}@`}${hp};transport=${this.#self.transport}>`;
      return this.#answer(req, ess, from, key, 302, { contact }, now);
    }
    this.#answer(req, ess, from, key, 503, { retryAfter: this.#o.retryAfter }, now);
  }

  /** A final response made here, remembered for retransmissions (§17.2). */
  #answer(
    req: SipRequest,
    ess: MessageEssentials,
    from: SipPeer,
    key: string,
    status: number,
    opts: { retryAfter?: number; contact?: string; headers?: SipHeader[] },
    now: number,
  ): void {
    const res = buildResponse(req, status, opts);
    const bytes = serializeMessage(res);
    const to = replyTarget(ess.vias[0]!, from);
    const txn = this.#transactions.create({ key, method: req.method, source: from, ends: false }, now);
    txn.local = true;
    this.#transactions.responded(txn, status, bytes, to, now);
    this.#stats.answered++;
    this.#o.sender.send(to, bytes);
  }

  /** The forwarded request never left (TCP connect refused): the client gets 503 from here. */
  #sendFailed(txn: ServerTransaction, forwarded: SipRequest, status: 503 | 513 = 503): void {
    if (txn.lastStatus >= 200) return;
    if (txn.attempt) this.#tracker.upstreamFailed(txn.attempt);
    if (forwarded.method === 'ACK') return;
    try {
      const res = buildResponse(forwarded, status, status === 503 ? { retryAfter: this.#o.retryAfter } : {});
      removeTopVia(res); // ours: the answer goes to the client as if the request had been answered here
      const via = topVia(res);
      if (!via) return;
      const bytes = serializeMessage(res);
      const to = { ...viaTarget(via), connection: txn.source.connection, ...sharedOf(txn.source) };
      txn.local = true;
      this.#transactions.responded(txn, status, bytes, to, this.#now());
      this.#o.sender.send(to, bytes);
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  // ── responses ───────────────────────────────────────────────────────────────────────────────

  #response(res: SipResponse, from: SipPeer): void {
    this.#stats.responses++;
    const now = this.#now();
    const ess = validateResponse(res);
    const via = ess.vias[0]!;
    // §18.1.2: a response whose top Via is not ours is discarded.
    const branch = via.params.get('branch') ?? '';
    if (
      !isSelfAddress({ host: via.host, port: via.port ?? 5060 }, this.#self) ||
      !branch.startsWith(BRANCH_MAGIC_COOKIE)
    ) {
      this.#stats.dropped++;
      return;
    }
    removeTopVia(res);
    if (ess.vias.length === 1) {
      this.#uac.onResponse(branch, ess.cseq.method, res.status); // an answer to our own BYE/CANCEL/NOTIFY
      return;
    }
    const txn = this.#transactions.byBranch(branch, ess.cseq.method);
    // §16.7 step 3 / §18.2.2: to the next Via's received/rport, over the request's connection on TCP.
    const to: SipPeer = {
      ...viaTarget(ess.vias[1]!),
      connection: txn?.source.connection,
      ...sharedOf(txn?.source),
    };
    let forcedDialog: Dialog | undefined;
    if (txn?.attempt) {
      const dialog = this.#tracker.attemptResponse(txn.attempt, res, ess, from, this.#isSelfRoute, now);
      if (dialog && txn.attempt.forced && dialog.state === DialogState.confirmed) forcedDialog = dialog;
    } else if (txn?.foreign && (res.status === 481 || res.status === 408)) {
      // §12.2.1.2: the dialog is gone; whoever tracks it is told (once: the final answer is relayed once).
      if (txn.lastStatus < 200) this.#o.onNote?.(txn.foreign);
    } else if (txn?.dialog) {
      this.#tracker.inDialogResponse(
        txn.dialog,
        txn.method,
        txn.ends,
        res,
        ess.cseq.seq,
        this.#isSelfRoute,
        now,
      );
    }
    const bytes = serializeMessage(res);
    if (txn) this.#transactions.responded(txn, res.status, bytes, to, now);
    this.#o.sender.send(to, bytes);
    // A call answered after Ebb cancelled it at a deadline is ended at once, as forced.
    if (forcedDialog) void Promise.all(this.#endDialog(forcedDialog));
  }

  // ── own requests ────────────────────────────────────────────────────────────────────────────

  /** Ends one dialog in both parties' names (SPEC §2 deadline) and counts its session as forced. */
  #endDialog(dialog: Dialog): Promise<number>[] {
    const reason: SipHeader = { name: 'Reason', value: MAINTENANCE_REASON };
    const out: Promise<number>[] = [];
    if (dialog.state === DialogState.confirmed) {
      if (dialog.usage === DialogUsage.invite) {
        out.push(...this.#byeBoth(dialog, MAINTENANCE_REASON));
      } else {
        // RFC 6665 §4.1.3: "deactivated" tells the subscriber to subscribe again at once (elsewhere).
        const event: SipHeader = { name: 'Event', value: dialog.event ?? 'presence' };
        const toSubscriber = [
          event,
          { name: 'Subscription-State', value: 'terminated;reason=deactivated' },
          ...contactHeader(dialog.callee.contact),
          reason,
        ];
        const toNotifier = [
          event,
          { name: 'Expires', value: '0' },
          ...contactHeader(dialog.caller.contact),
          reason,
        ];
        const b1 = newBranch();
        const b2 = newBranch();
        out.push(this.#sendOwn(requestToParty(dialog, 'caller', 'NOTIFY', this.#self, b1, toSubscriber), b1));
        out.push(
          this.#sendOwn(requestToParty(dialog, 'callee', 'SUBSCRIBE', this.#self, b2, toNotifier), b2),
        );
      }
    }
    this.#tracker.end(dialog, true);
    return out;
  }

  /**
   * A BYE to both parties of a call, each in the other's name. At a deadline; and for a 2xx never ACKed
   * (RFC 3261 §13.3.1.4): the BYE to the caller is the one its UAS should have sent, the one to the UAS
   * frees a server that does not follow that rule.
   */
  #byeBoth(dialog: Dialog, reason: string): Promise<number>[] {
    const header: SipHeader = { name: 'Reason', value: reason };
    return (['caller', 'callee'] as const).map((toward) => {
      const branch = newBranch();
      return this.#sendOwn(requestToParty(dialog, toward, 'BYE', this.#self, branch, [header]), branch);
    });
  }

  #sendOwn(out: OutgoingRequest, branch: string): Promise<number> {
    try {
      const transport = this.#viaTransport(out.to);
      if (transport !== this.#self.transport) {
        removeTopVia(out.request);
        prependVia(out.request, ownVia(this.#self, branch, transport));
      }
      return this.#uac.send(branch, out.request.method, serializeMessage(out.request), out.to);
    } catch (err) {
      this.#o.onError?.(err);
      return Promise.resolve(0);
    }
  }

  // ── helpers ─────────────────────────────────────────────────────────────────────────────────

  /** §16.4: Route entries naming this proxy are removed; a strict router's Request-URI is undone. */
  #removeOwnRoutes(req: SipRequest): void {
    for (;;) {
      const route = getHeader(req, 'Route');
      if (route === undefined || !this.#isSelfRoute(route)) break;
      removeTopRoute(req);
    }
    if (isSelfUri(req.uri, this.#self) && /;lr(?=[;?>]|$)/i.test(req.uri)) {
      const routes = getHeaderValues(req, 'Route');
      const last = routes.pop();
      const uri = last === undefined ? undefined : nameAddrUri(last);
      if (uri === undefined) return;
      req.uri = uri;
      removeHeader(req, 'Route');
      for (const r of routes) addHeader(req, 'Route', r);
    }
  }

  /** SPEC §4.2: an OPTIONS to the front end itself has no user part and no Route beyond us. */
  #addressedToUs(req: SipRequest): boolean {
    return (
      getHeader(req, 'Route') === undefined && /^sips?:/i.test(req.uri) && uriUser(req.uri) === undefined
    );
  }
}

/**
 * What a request inside a dialog does to it, for the note (RFC 3261 §15.1: a BYE ends the session when
 * sent; RFC 6665 §4.1.2.3: so does a NOTIFY saying terminated).
 */
function foreignEvent(req: SipRequest): SipDialogNoteEvent {
  if (req.method === 'BYE') return SipDialogNoteEvent.ended;
  if (req.method === 'NOTIFY') {
    const state = parseSubscriptionState(getHeader(req, 'Subscription-State'));
    if (state?.value === 'terminated') return SipDialogNoteEvent.ended;
  }
  return SipDialogNoteEvent.active;
}

/** SPEC §1: new sessions are dialog-creating requests (without a To-tag) and REGISTER. */
function isNewSession(method: string): boolean {
  return method === 'INVITE' || method === 'SUBSCRIBE' || method === 'REGISTER';
}

function nameAddrUri(value: string): string | undefined {
  try {
    return parseNameAddr(value).uri;
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}

function uriUser(uri: string): string | undefined {
  try {
    return parseSipUri(uri).user;
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}

function addParties(into: Set<number>, dialog: Dialog): void {
  if (dialog.caller.peer.connection !== undefined) into.add(dialog.caller.peer.connection);
  if (dialog.callee.peer.connection !== undefined) into.add(dialog.callee.peer.connection);
}

function contactHeader(uri: string | undefined): SipHeader[] {
  return uri === undefined ? [] : [{ name: 'Contact', value: `<${uri}>` }];
}

function reasonFor(err: SipParseError): string | undefined {
  return err.status === 400 ? `Bad Request (${err.field ?? 'message'})` : undefined;
}

/** A Route is left after our own were removed: the request goes on to the next record-routing hop. */
function alongRoute(req: SipRequest): boolean {
  return getHeader(req, 'Route') !== undefined;
}
