import { createHash, randomBytes } from 'node:crypto';
import type { CallAttempt, Dialog } from './dialog.ts';
import { ExpiryWheel } from './expiry-wheel.ts';
import { formatHostPort } from './host-port.ts';
import { BRANCH_MAGIC_COOKIE } from './sip-ids.ts';
import type { SipDialogNote } from './sip-dialog-note.ts';
import type { SipPeer } from './sip-peer.ts';
import type { MessageEssentials } from './validate-request.ts';

/** RFC 3261 §17.1.1.1: T1, the round-trip estimate; 64*T1 is how long a transaction may wait (Timers B, F, H, J). */
export const T1_MS = 500;
/** RFC 3261 §17.1.2.2: the cap on non-INVITE retransmission intervals. */
export const T2_MS = 4000;
export const TIMER_64T1_MS = 64 * T1_MS;
/** RFC 3261 §16.6 step 11: Timer C, how long a proxy waits for a final answer after a provisional one. */
export const TIMER_C_MS = 180_000;

/**
 * One request a proxy has seen (RFC 3261 §17.2 server transaction, reduced to what a proxy needs to
 * absorb retransmissions and route responses): where it came from, where its copy went and with which
 * branch, and the last response sent back, to re-send when the request is retransmitted.
 */
export interface ServerTransaction {
  readonly key: string;
  readonly method: string;
  /** Where the request came from: responses go back over this connection when it is open (§18.2.2). */
  readonly source: SipPeer;
  /** The branch of the copy this proxy forwarded; undefined when the request was answered here. */
  ourBranch: string | undefined;
  /** Where the copy went. */
  dest: SipPeer | undefined;
  lastResponse: Buffer | undefined;
  /** Where `lastResponse` went. */
  responseTo: SipPeer | undefined;
  /** 0 until a response passes. */
  lastStatus: number;
  /** The final response was made by this proxy (503, 302, OPTIONS...): the ACK for it stops here. */
  local: boolean;
  expiresAt: number;
  /** For a dialog-creating request: the call attempt its responses create dialogs from (RFC 3261 §12.1). */
  attempt: CallAttempt | undefined;
  /** For a request inside a known dialog. */
  dialog: Dialog | undefined;
  /** Its final answer ends that dialog (BYE, NOTIFY with Subscription-State: terminated). */
  ends: boolean;
  /**
   * For a request inside a dialog this proxy does not track (SPEC §13): the note to give if the answer
   * says the dialog is gone (481, 408; RFC 3261 §12.2.1.2).
   */
  foreign: SipDialogNote | undefined;
}

/**
 * The transaction a request belongs to (RFC 3261 §17.2.3): the top Via's branch and sent-by plus the
 * method, where ACK names the INVITE it acknowledges. Requests whose branch lacks the magic cookie come
 * from RFC 2543 elements and are matched on Call-ID, From-tag, CSeq number and sent-by instead.
 */
export function transactionKey(method: string, ess: MessageEssentials): string {
  const m = method === 'ACK' ? 'INVITE' : method;
  return `${branchSeed(ess)}|${m}`;
}

/** What identifies the client's transaction regardless of method: ACK and CANCEL share the INVITE's. */
function branchSeed(ess: MessageEssentials): string {
  const via = ess.vias[0]!;
  const sentBy = formatHostPort(via.host, via.port ?? 5060);
  const branch = via.params.get('branch');
  if (branch && branch.startsWith(BRANCH_MAGIC_COOKIE)) return `${branch}|${sentBy}`;
  return `2543|${ess.callId}|${ess.from.params.get('tag') ?? ''}|${ess.cseq.seq}|${sentBy}`;
}

/**
 * A branch for the forwarded copy derived from the incoming one (RFC 3261 §16.11): retransmissions,
 * the CANCEL and the ACK for a non-2xx answer get the same branch as the INVITE they belong to, so the
 * next hop matches them to its transaction without this proxy keeping their state. A per-process secret
 * keeps others from predicting it.
 */
export class BranchDeriver {
  readonly #salt = randomBytes(16);

  derive(ess: MessageEssentials): string {
    const h = createHash('sha1').update(this.#salt).update(branchSeed(ess)).digest('base64url');
    return `${BRANCH_MAGIC_COOKIE}.e${h.slice(0, 22)}`;
  }
}

/**
 * A copy that owns its memory. Small Buffers are slices of Node's shared 8 KB pool slabs; one kept for
 * 64*T1 would keep its whole slab alive, which under load costs several KB of RSS per transaction.
 */
export function unpooled(bytes: Buffer): Buffer {
  if (bytes.buffer.byteLength === bytes.length) return bytes;
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}

export interface NewTransaction {
  key: string;
  method: string;
  source: SipPeer;
  ourBranch?: string;
  dest?: SipPeer;
  attempt?: CallAttempt;
  dialog?: Dialog;
  ends?: boolean;
  foreign?: SipDialogNote;
}

/** The proxy's server transactions, found by the incoming request's key or the forwarded copy's branch. */
export class TransactionTable {
  readonly #byKey = new Map<string, ServerTransaction>();
  readonly #byBranch = new Map<string, ServerTransaction>();
  readonly #wheel: ExpiryWheel;

  constructor(now: number) {
    this.#wheel = new ExpiryWheel(now);
  }

  get size(): number {
    return this.#byKey.size;
  }

  get(key: string): ServerTransaction | undefined {
    return this.#byKey.get(key);
  }

  /** The transaction whose forwarded copy had this branch; `method` is the response's CSeq method. */
  byBranch(branch: string, method: string): ServerTransaction | undefined {
    return this.#byBranch.get(`${branch}|${method === 'ACK' ? 'INVITE' : method}`);
  }

  create(t: NewTransaction, now: number): ServerTransaction {
    const txn: ServerTransaction = {
      key: t.key,
      method: t.method,
      source: t.source,
      ourBranch: t.ourBranch,
      dest: t.dest,
      lastResponse: undefined,
      responseTo: undefined,
      lastStatus: 0,
      local: false,
      // Timer B / F: a request with no answer at all is given up after 64*T1 (§17.1.1.2, §17.1.2.2).
      expiresAt: now + TIMER_64T1_MS + 8000,
      attempt: t.attempt,
      dialog: t.dialog,
      ends: t.ends ?? false,
      foreign: t.foreign,
    };
    this.#byKey.set(txn.key, txn);
    if (txn.ourBranch) this.#byBranch.set(`${txn.ourBranch}|${txn.method}`, txn);
    this.#wheel.schedule(txn.key, txn.expiresAt);
    return txn;
  }

  /** Records the response sent back and how long the transaction must still absorb retransmissions. */
  responded(txn: ServerTransaction, status: number, bytes: Buffer, to: SipPeer, now: number): void {
    txn.lastResponse = unpooled(bytes);
    txn.responseTo = to;
    txn.lastStatus = status;
    // A final answer keeps the transaction for Timer H / J (64*T1) to answer retransmissions from
    // memory (§17.2.1, §17.2.2); a provisional one to an INVITE arms Timer C (§16.6 step 11).
    const keep = status >= 200 ? TIMER_64T1_MS : txn.method === 'INVITE' ? TIMER_C_MS : TIMER_64T1_MS;
    const at = now + keep;
    // A later deadline is picked up lazily when the earlier entry falls due; an earlier one is filed now.
    if (at < txn.expiresAt) this.#wheel.schedule(txn.key, at);
    txn.expiresAt = at;
  }

  /** Connections of requests still waiting for their final answer. */
  pendingConnections(into: Set<number>): void {
    for (const txn of this.#byKey.values()) {
      if (txn.lastStatus < 200 && txn.source.connection !== undefined) into.add(txn.source.connection);
    }
  }

  sweep(now: number): void {
    this.#wheel.sweep(now, (key) => {
      const txn = this.#byKey.get(key);
      if (!txn) return;
      if (txn.expiresAt > now) {
        this.#wheel.schedule(key, txn.expiresAt);
        return;
      }
      this.#byKey.delete(key);
      if (txn.ourBranch) this.#byBranch.delete(`${txn.ourBranch}|${txn.method}`);
    });
  }

  clear(): void {
    this.#byKey.clear();
    this.#byBranch.clear();
    this.#wheel.clear();
  }
}
