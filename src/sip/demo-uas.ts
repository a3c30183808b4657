import { buildResponse, type ResponseOptions } from './build-response.ts';
import { parseDeltaSeconds } from './dialog-tracker.ts';
import { ownVia } from './dialog-requests.ts';
import { ExpiryWheel } from './expiry-wheel.ts';
import { formatHostPort } from './host-port.ts';
import { parseNameAddr } from './name-addr.ts';
import { serializeMessage } from './serialize-message.ts';
import { newBranch, newTag } from './sip-ids.ts';
import { getHeader, getHeaderValues } from './sip-headers.ts';
import { createRequest, type SipHeader, type SipMessage, type SipRequest } from './sip-message.ts';
import { SipParseError } from './sip-parse-error.ts';
import { uriTarget, type SipPeer, type SipSelf, type SipSender } from './sip-peer.ts';
import { T1_MS, T2_MS, TIMER_64T1_MS, transactionKey, unpooled } from './transaction-table.ts';
import { UacRequests } from './uac-requests.ts';
import { validateRequest, validateResponse, type MessageEssentials } from './validate-request.ts';
import { replyTarget, stampReceived, stampVia } from './via-received.ts';
import { topVia } from './message-mutations.ts';

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, INFO, UPDATE, MESSAGE, PRACK';
/** Dialogs kept at most; the oldest go first (a demo must not grow without bound when BYEs are lost). */
const MAX_DIALOGS = 200_000;

interface UasDialog {
  key: string;
  usage: 'invite' | 'subscribe';
  /** Our To, with our tag: the From of requests we send. */
  local: string;
  /** Their From: the To of requests we send. */
  remote: string;
  remoteTarget: string;
  /** RFC 3261 §12.1.1: the Record-Route values in order. */
  routeSet: string[];
  cseq: number;
  peer: SipPeer;
  event: string | undefined;
  expiresAt: number;
  /** The 2xx retransmitted over UDP until the ACK (§13.3.1.4). */
  retransmit: NodeJS.Timeout | undefined;
}

export interface DemoUasStats {
  invites: number;
  acks: number;
  byes: number;
  cancels: number;
  options: number;
  registers: number;
  subscribes: number;
  notifies: number;
  retransmissions: number;
  dialogs: number;
}

/**
 * `upstream: builtin:sip-uas`: a small callee so a demo pool runs with nothing else installed. It answers
 * INVITE at once with 100 and a 200 carrying SDP (the 2xx retransmitted until the ACK on UDP), BYE, OPTIONS,
 * REGISTER, INFO, UPDATE, MESSAGE with 200, SUBSCRIBE with 200 and a NOTIFY (RFC 6665), CANCEL per §9.2;
 * it answers retransmissions from memory. Socket-free like the proxy core.
 */
export class DemoUas {
  readonly #self: SipSelf;
  readonly #sender: SipSender;
  readonly #uac: UacRequests;
  readonly #responses = new Map<string, { bytes: Buffer; to: SipPeer; expiresAt: number }>();
  readonly #dialogs = new Map<string, UasDialog>();
  readonly #wheel: ExpiryWheel;
  readonly #sweep: NodeJS.Timeout;
  readonly #contact: string;
  readonly #stats = {
    invites: 0,
    acks: 0,
    byes: 0,
    cancels: 0,
    options: 0,
    registers: 0,
    subscribes: 0,
    notifies: 0,
    retransmissions: 0,
  };

  constructor(self: SipSelf, sender: SipSender) {
    this.#self = self;
    this.#sender = sender;
    this.#uac = new UacRequests(sender, self.transport !== 'udp');
    this.#wheel = new ExpiryWheel(Date.now());
    this.#contact = `<sip:uas@${formatHostPort(self.host, self.port)};transport=${self.transport}>`;
    this.#sweep = setInterval(() => this.#expire(Date.now()), 1000);
    this.#sweep.unref();
  }

  stats(): DemoUasStats {
    return { ...this.#stats, dialogs: this.#dialogs.size };
  }

  /** Never throws. */
  receive(msg: SipMessage, from: SipPeer): void {
    try {
      if (msg.kind === 'response') {
        const ess = validateResponse(msg);
        const branch = ess.vias[0]!.params.get('branch') ?? '';
        this.#uac.onResponse(branch, ess.cseq.method, msg.status);
        return;
      }
      this.#request(msg, from);
    } catch (err) {
      if (err instanceof SipParseError) this.receiveError(err, from);
    }
  }

  receiveError(err: SipParseError, from: SipPeer): void {
    const head = err.head;
    if (!head || head.kind !== 'request' || err.status === undefined || head.method === 'ACK') return;
    try {
      const via = topVia(head);
      if (via)
        this.#sender.send(
          replyTarget(stampVia(via, from), from),
          serializeMessage(buildResponse(head, err.status)),
        );
    } catch {
      // A head too broken to answer is dropped.
    }
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#uac.close();
    for (const d of this.#dialogs.values()) if (d.retransmit) clearTimeout(d.retransmit);
    this.#dialogs.clear();
    this.#responses.clear();
    this.#wheel.clear();
  }

  #request(req: SipRequest, from: SipPeer): void {
    const ess = validateRequest(req);
    stampReceived(req, ess.vias[0]!, from);
    const to = replyTarget(ess.vias[0]!, from);
    if (req.method === 'ACK') {
      this.#stats.acks++;
      const d = this.#dialog(ess);
      if (d?.retransmit) clearTimeout(d.retransmit);
      if (d) d.retransmit = undefined;
      return;
    }
    const key = transactionKey(req.method, ess);
    const cached = this.#responses.get(key);
    if (cached) {
      this.#stats.retransmissions++;
      this.#sender.send({ ...cached.to, connection: from.connection }, cached.bytes);
      return;
    }
    const toTag = ess.to.params.get('tag') ?? undefined;
    switch (req.method) {
      case 'INVITE':
        this.#stats.invites++;
        return toTag === undefined
          ? this.#invite(req, ess, key, to, from)
          : this.#reinvite(req, ess, key, to);
      case 'BYE': {
        this.#stats.byes++;
        const d = this.#dialog(ess);
        if (d) this.#forget(d);
        return this.#reply(req, key, to, d ? 200 : 481);
      }
      case 'CANCEL': {
        this.#stats.cancels++;
        // §9.2: the INVITE was answered at once, so the CANCEL has nothing left to stop.
        const invite = this.#responses.get(transactionKey('INVITE', ess));
        return this.#reply(req, key, to, invite ? 200 : 481);
      }
      case 'OPTIONS':
        this.#stats.options++;
        return this.#reply(req, key, to, 200, {
          headers: [
            { name: 'Allow', value: ALLOW },
            { name: 'Accept', value: 'application/sdp' },
          ],
        });
      case 'REGISTER':
        this.#stats.registers++;
        return this.#register(req, key, to);
      case 'SUBSCRIBE':
        this.#stats.subscribes++;
        return this.#subscribe(req, ess, key, to, from, toTag);
      case 'NOTIFY':
        this.#stats.notifies++;
        return this.#reply(req, key, to, 200);
      case 'INFO':
      case 'UPDATE':
      case 'MESSAGE':
      case 'PRACK':
      case 'PUBLISH':
        return this.#reply(req, key, to, 200);
      default:
        return this.#reply(req, key, to, 501);
    }
  }

  #invite(req: SipRequest, ess: MessageEssentials, key: string, to: SipPeer, from: SipPeer): void {
    const tag = newTag();
    const rr = recordRoutes(req);
    // No 180: a callee that answers at once. A 180 sent right before the 200 is often reordered by a
    // multi-process proxy in front (Kamailio's UDP workers), which callers then reject.
    this.#send(buildResponse(req, 100), to);
    const ok = buildResponse(req, 200, {
      toTag: tag,
      contact: this.#contact,
      headers: [...rr, ...sessionTimer(req), { name: 'Content-Type', value: 'application/sdp' }],
      body: sdp(this.#self.host),
    });
    const bytes = serializeMessage(ok);
    this.#remember(key, bytes, to);
    const d = this.#newDialog(req, ess, 'invite', tag, from);
    this.#sender.send(to, bytes);
    if (this.#self.transport === 'udp' && to.connection === undefined)
      this.#retransmit2xx(d, bytes, to, T1_MS, Date.now() + TIMER_64T1_MS);
  }

  #reinvite(req: SipRequest, ess: MessageEssentials, key: string, to: SipPeer): void {
    const d = this.#dialog(ess);
    if (!d) return this.#reply(req, key, to, 481);
    d.expiresAt = Date.now() + 4 * 3_600_000;
    this.#reply(req, key, to, 200, {
      contact: this.#contact,
      headers: [...sessionTimer(req), { name: 'Content-Type', value: 'application/sdp' }],
      body: sdp(this.#self.host),
    });
  }

  #register(req: SipRequest, key: string, to: SipPeer): void {
    const expires = parseDeltaSeconds(getHeader(req, 'Expires')) ?? 3600;
    const contacts = getHeaderValues(req, 'Contact').filter((c) => c.trim() !== '*');
    this.#reply(req, key, to, 200, {
      contact: contacts,
      headers: [{ name: 'Expires', value: String(Math.min(expires, 3600)) }],
    });
  }

  #subscribe(
    req: SipRequest,
    ess: MessageEssentials,
    key: string,
    to: SipPeer,
    from: SipPeer,
    toTag: string | undefined,
  ): void {
    const expires = Math.min(parseDeltaSeconds(getHeader(req, 'Expires')) ?? 600, 3600);
    let d: UasDialog | undefined;
    let tag = toTag;
    if (toTag === undefined) {
      tag = newTag();
      d = this.#newDialog(req, ess, 'subscribe', tag, from);
    } else {
      d = this.#dialog(ess);
      if (!d) return this.#reply(req, key, to, 481);
    }
    d.expiresAt = Date.now() + expires * 1000;
    this.#wheel.schedule(d.key, d.expiresAt);
    this.#reply(req, key, to, 200, {
      toTag: tag,
      contact: this.#contact,
      headers: [...recordRoutes(req), { name: 'Expires', value: String(expires) }],
    });
    // RFC 6665 §4.2.1.2: a NOTIFY follows every accepted SUBSCRIBE; Expires: 0 ends the subscription.
    const state = expires === 0 ? 'terminated;reason=timeout' : `active;expires=${expires}`;
    this.#notify(d, state);
    if (expires === 0) this.#forget(d);
  }

  #notify(d: UasDialog, state: string): void {
    d.cseq++;
    const branch = newBranch();
    const headers: SipHeader[] = [
      { name: 'Via', value: ownVia(this.#self, branch) },
      { name: 'Max-Forwards', value: '70' },
      ...d.routeSet.map((value) => ({ name: 'Route', value })),
      { name: 'From', value: d.local },
      { name: 'To', value: d.remote },
      { name: 'Call-ID', value: d.key.split('\n')[0]! },
      { name: 'CSeq', value: `${d.cseq} NOTIFY` },
      { name: 'Contact', value: this.#contact },
      { name: 'Event', value: d.event ?? 'presence' },
      { name: 'Subscription-State', value: state },
    ];
    const req = createRequest('NOTIFY', d.remoteTarget, headers);
    const first = d.routeSet[0];
    const hop =
      (first === undefined ? undefined : uriTarget(uriOf(first))) ?? uriTarget(d.remoteTarget) ?? d.peer;
    void this.#uac.send(branch, 'NOTIFY', serializeMessage(req), { ...hop, connection: d.peer.connection });
  }

  #reply(req: SipRequest, key: string, to: SipPeer, status: number, opts: ResponseOptions = {}): void {
    const bytes = serializeMessage(buildResponse(req, status, opts));
    this.#remember(key, bytes, to);
    this.#sender.send(to, bytes);
  }

  #send(res: SipMessage, to: SipPeer): void {
    this.#sender.send(to, serializeMessage(res));
  }

  /** Answers to retransmissions come from here for 64*T1 (§17.2.1, §17.2.2). */
  #remember(key: string, bytes: Buffer, to: SipPeer): void {
    const expiresAt = Date.now() + TIMER_64T1_MS;
    this.#responses.set(key, { bytes: unpooled(bytes), to, expiresAt });
    this.#wheel.schedule(`r\n${key}`, expiresAt);
  }

  #newDialog(
    req: SipRequest,
    ess: MessageEssentials,
    usage: 'invite' | 'subscribe',
    tag: string,
    from: SipPeer,
  ): UasDialog {
    const key = `${ess.callId}\n${tag}`;
    const d: UasDialog = {
      key,
      usage,
      local: `${getHeader(req, 'To')!};tag=${tag}`,
      remote: getHeader(req, 'From')!,
      remoteTarget: contactOf(req) ?? ess.from.uri,
      routeSet: getHeaderValues(req, 'Record-Route'),
      cseq: 0,
      peer: from,
      event: getHeader(req, 'Event'),
      expiresAt: Date.now() + 4 * 3_600_000,
      retransmit: undefined,
    };
    this.#dialogs.set(key, d);
    this.#wheel.schedule(key, d.expiresAt);
    if (this.#dialogs.size > MAX_DIALOGS) this.#forget(this.#dialogs.values().next().value!);
    return d;
  }

  #dialog(ess: MessageEssentials): UasDialog | undefined {
    const tag = ess.to.params.get('tag');
    return tag ? this.#dialogs.get(`${ess.callId}\n${tag}`) : undefined;
  }

  #forget(d: UasDialog): void {
    if (d.retransmit) clearTimeout(d.retransmit);
    this.#dialogs.delete(d.key);
  }

  /** §13.3.1.4: the 2xx goes again at T1, 2*T1... capped at T2, until the ACK or 64*T1. */
  #retransmit2xx(d: UasDialog, bytes: Buffer, to: SipPeer, interval: number, until: number): void {
    d.retransmit = setTimeout(() => {
      d.retransmit = undefined;
      if (!this.#dialogs.has(d.key) || Date.now() >= until) return;
      this.#sender.send(to, bytes);
      this.#retransmit2xx(d, bytes, to, Math.min(interval * 2, T2_MS), until);
    }, interval);
    d.retransmit.unref();
  }

  #expire(now: number): void {
    this.#wheel.sweep(now, (key) => {
      if (key.startsWith('r\n')) {
        const k = key.slice(2);
        const r = this.#responses.get(k);
        if (r && r.expiresAt <= now) this.#responses.delete(k);
        return;
      }
      const d = this.#dialogs.get(key);
      if (d && d.expiresAt <= now) this.#forget(d);
      else if (d) this.#wheel.schedule(key, d.expiresAt);
    });
  }
}

/** §12.1.1: a UAS copies Record-Route into responses that create a dialog. */
function recordRoutes(req: SipRequest): SipHeader[] {
  return getHeaderValues(req, 'Record-Route').map((value) => ({ name: 'Record-Route', value }));
}

/** RFC 4028 §9: echo the session interval the caller asked for, with the caller as refresher. */
function sessionTimer(req: SipRequest): SipHeader[] {
  const se = getHeader(req, 'Session-Expires');
  if (se === undefined) return [];
  const value = /refresher=/i.test(se) ? se : `${se};refresher=uac`;
  const supported = getHeaderValues(req, 'Supported').some((v) => v.toLowerCase() === 'timer');
  return [{ name: 'Session-Expires', value }, ...(supported ? [{ name: 'Require', value: 'timer' }] : [])];
}

function sdp(host: string): Buffer {
  const ip = host.includes(':') ? 'IP6' : 'IP4';
  return Buffer.from(
    [
      'v=0',
      `o=ebb 1 1 IN ${ip} ${host}`,
      's=ebb demo',
      `c=IN ${ip} ${host}`,
      't=0 0',
      'm=audio 9 RTP/AVP 0 8',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=sendrecv',
      '',
    ].join('\r\n'),
  );
}

function contactOf(req: SipRequest): string | undefined {
  const v = getHeader(req, 'Contact');
  return v === undefined ? undefined : uriOf(v) || undefined;
}

function uriOf(nameAddr: string): string {
  try {
    return parseNameAddr(nameAddr).uri;
  } catch (err) {
    if (err instanceof SipParseError) return '';
    throw err;
  }
}
