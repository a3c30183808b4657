import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import {
  createRequest,
  getHeader,
  getHeaderValues,
  isResponse,
  newBranch,
  newTag,
  parseDatagram,
  parseNameAddr,
  serializeMessage,
  type SipHeader,
  type SipResponse,
} from '../sip/index.ts';
import { NotAcceptedError, sleep, type SessionRunner } from './load-generator.ts';
import type { Endpoint } from './pool-resolver.ts';

/** RFC 3261 §17.1.1.2: Timer A starts at T1 and doubles; Timer B gives up after 64*T1. */
const t1Ms = 500;
const giveUpMs = 64 * t1Ms;

interface Waiter {
  method: string;
  onResponse: (response: SipResponse) => void;
}

/**
 * A small SIP caller over UDP for `ebb load` (and the connector's SIP rule, SPEC §4.4): INVITE a member;
 * a 503 (or any refusal before the call is answered) moves on to the next member; once answered, ACK,
 * hold, BYE along the route set the front end recorded (RFC 3261 §12.1.2, §16.12).
 */
export class SipCaller {
  private readonly socket: Socket;
  private readonly waiters = new Map<string, Waiter>();
  private address: AddressInfo | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (datagram: Buffer) => this.onDatagram(datagram));
    socket.on('error', () => {});
  }

  static async open(): Promise<SipCaller> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const caller = new SipCaller(socket);
    caller.address = socket.address();
    return caller;
  }

  /** A session runner for `runLoad`: one call per session. */
  runner(service: string): SessionRunner {
    return ({ endpoints, holdMs, accepted }) => this.call(endpoints, service, holdMs, accepted);
  }

  /** Calls the first member that answers; `onAnswered` learns whether another refused first. */
  async call(
    endpoints: Endpoint[],
    service: string,
    holdMs: number,
    onAnswered: (retried: boolean) => void = () => {},
  ): Promise<void> {
    let refusals = 0;
    for (const endpoint of endpoints) {
      const answered = await this.invite(endpoint, service);
      if (answered === 'refused') {
        refusals++;
        continue;
      }
      onAnswered(refusals > 0);
      await sleep(holdMs);
      await this.bye(endpoint, answered);
      return;
    }
    throw new NotAcceptedError(endpoints.length === 0 ? 'no member in DNS' : 'every member refused the call');
  }

  close(): void {
    this.socket.close();
  }

  private async invite(endpoint: Endpoint, service: string): Promise<Dialog | 'refused'> {
    const callId = `${randomUUID()}@ebb-load`;
    const fromTag = newTag();
    const branch = newBranch();
    const requestUri = `sip:${service}@${endpoint.host}:${endpoint.port}`;
    const sdp = Buffer.from(
      `v=0\r\no=ebb 1 1 IN IP4 127.0.0.1\r\ns=ebb load\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n`,
    );
    const invite = createRequest(
      'INVITE',
      requestUri,
      [
        ...this.baseHeaders(branch, fromTag, callId, `<${requestUri}>`, '1 INVITE'),
        { name: 'Contact', value: `<sip:load@${this.self()}>` },
        { name: 'Content-Type', value: 'application/sdp' },
      ],
      sdp,
    );
    const final = await this.transact(callId, 'INVITE', serializeMessage(invite), endpoint, true);
    if (!final) throw new Error('INVITE timed out');
    const to = getHeader(final, 'To') ?? '';
    if (final.status >= 300) {
      // RFC 3261 §17.1.1.3: the ACK for a failure has the INVITE's branch and the response's To.
      this.send(
        serializeMessage(
          createRequest('ACK', requestUri, this.baseHeaders(branch, fromTag, callId, to, '1 ACK')),
        ),
        endpoint,
      );
      if (final.status === 503 || final.status === 302 || final.status === 486 || final.status === 480)
        return 'refused';
      throw new Error(`call refused with ${final.status}`);
    }
    // RFC 3261 §12.1.2: the caller's route set is the Record-Route of the 2xx, reversed.
    const routeSet = getHeaderValues(final, 'Record-Route').reverse();
    const contact = getHeader(final, 'Contact');
    const remoteTarget = contact ? parseNameAddr(contact, 'Contact').uri : requestUri;
    const dialog: Dialog = { callId, fromTag, to, routeSet, remoteTarget };
    this.send(this.inDialog(dialog, 'ACK', '1 ACK'), endpoint);
    return dialog;
  }

  private async bye(endpoint: Endpoint, dialog: Dialog): Promise<void> {
    const final = await this.transact(
      dialog.callId,
      'BYE',
      this.inDialog(dialog, 'BYE', '2 BYE'),
      endpoint,
      false,
    );
    if (!final) throw new Error('BYE timed out: the call may have been dropped');
    if (final.status >= 300) throw new Error(`BYE answered ${final.status}: the call was already gone`);
  }

  /** Sends and retransmits until a final response (§17.1.1.2 / §17.1.2.2); null after Timer B/F. */
  private transact(
    callId: string,
    method: string,
    bytes: Buffer,
    to: Endpoint,
    invite: boolean,
  ): Promise<SipResponse | null> {
    return new Promise((resolve) => {
      let interval = t1Ms;
      let provisional = false;
      let timer: NodeJS.Timeout;
      const giveUp = setTimeout(() => finish(null), giveUpMs);
      const finish = (response: SipResponse | null) => {
        clearTimeout(timer);
        clearTimeout(giveUp);
        this.waiters.delete(callId);
        resolve(response);
      };
      const retransmit = () => {
        // An INVITE stops retransmitting on a provisional response; other requests slow to T2 (4 s).
        if (invite && provisional) return;
        this.send(bytes, to);
        interval = Math.min(interval * 2, 4000);
        timer = setTimeout(retransmit, interval);
      };
      this.waiters.set(callId, {
        method,
        onResponse: (response) => {
          if (response.status < 200) provisional = true;
          else finish(response);
        },
      });
      retransmit();
    });
  }

  private onDatagram(datagram: Buffer): void {
    let message;
    try {
      message = parseDatagram(datagram);
    } catch {
      return;
    }
    if (!isResponse(message)) return;
    const callId = getHeader(message, 'Call-ID');
    const method = getHeader(message, 'CSeq')?.split(/\s+/)[1];
    const waiter = callId ? this.waiters.get(callId) : undefined;
    if (waiter && waiter.method === method) waiter.onResponse(message);
  }

  private inDialog(dialog: Dialog, method: string, cseq: string): Buffer {
    const headers = this.baseHeaders(newBranch(), dialog.fromTag, dialog.callId, dialog.to, cseq);
    for (const route of dialog.routeSet) headers.push({ name: 'Route', value: route });
    return serializeMessage(createRequest(method, dialog.remoteTarget, headers));
  }

  private baseHeaders(
    branch: string,
    fromTag: string,
    callId: string,
    to: string,
    cseq: string,
  ): SipHeader[] {
    return [
      { name: 'Via', value: `SIP/2.0/UDP ${this.self()};branch=${branch};rport` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<sip:load@ebb.test>;tag=${fromTag}` },
      { name: 'To', value: to },
      { name: 'Call-ID', value: callId },
      { name: 'CSeq', value: cseq },
    ];
  }

  /** In-dialog requests go to the front end that recorded the route (the member), as loose routing does. */
  private send(bytes: Buffer, to: Endpoint): void {
    this.socket.send(bytes, to.port, to.host);
  }

  private self(): string {
    return `${this.address!.address}:${this.address!.port}`;
  }
}

interface Dialog {
  callId: string;
  fromTag: string;
  to: string;
  routeSet: string[];
  remoteTarget: string;
}
