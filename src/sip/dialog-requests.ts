import type { CallAttempt, Dialog, DialogParty } from './dialog.ts';
import { parseNameAddr } from './name-addr.ts';
import { createRequest, type SipHeader, type SipRequest } from './sip-message.ts';
import { SipParseError } from './sip-parse-error.ts';
import { formatHostPort } from './host-port.ts';
import { uriTarget, viaProtocol, type SipPeer, type SipSelf, type SipTransportName } from './sip-peer.ts';

/** RFC 3326 Reason for what Ebb ends at a deadline or hard stop (SPEC §2). */
export const MAINTENANCE_REASON = 'SIP;cause=503;text="maintenance"';

export interface OutgoingRequest {
  request: SipRequest;
  to: SipPeer;
}

/**
 * A request this proxy sends inside a dialog in the name of one party to the other (RFC 3261 §12.2.1.1):
 * Request-URI the target's remote target, Route its route set from here, From/To/Call-ID of the dialog,
 * and the next CSeq of the party it speaks for. Used to end dialogs at a deadline.
 */
export function requestToParty(
  dialog: Dialog,
  toward: 'caller' | 'callee',
  method: string,
  self: SipSelf,
  branch: string,
  extra: SipHeader[],
): OutgoingRequest {
  const target = toward === 'caller' ? dialog.caller : dialog.callee;
  const speaker = toward === 'caller' ? dialog.callee : dialog.caller;
  speaker.cseq = (speaker.cseq ?? 0) + 1;
  const uri =
    target.contact ?? uriOf(target.nameAddr) ?? `sip:${formatHostPort(target.peer.host, target.peer.port)}`;
  const headers: SipHeader[] = [
    { name: 'Via', value: ownVia(self, branch) },
    { name: 'Max-Forwards', value: '70' },
    ...target.route.map((value) => ({ name: 'Route', value })),
    { name: 'From', value: speaker.nameAddr },
    { name: 'To', value: target.nameAddr },
    { name: 'Call-ID', value: dialog.callId },
    { name: 'CSeq', value: `${speaker.cseq} ${method}` },
    ...extra,
  ];
  return { request: createRequest(method, uri, headers), to: nextHop(target, uri) };
}

/**
 * The CANCEL of a forwarded INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq number and
 * Route as the request it cancels, and the same Via branch, so the next hop matches it.
 */
export function cancelFor(attempt: CallAttempt, self: SipSelf, extra: SipHeader[]): OutgoingRequest {
  const headers: SipHeader[] = [
    { name: 'Via', value: ownVia(self, attempt.ourBranch) },
    { name: 'Max-Forwards', value: '70' },
    ...attempt.routeHeaders.map((value) => ({ name: 'Route', value })),
    { name: 'From', value: attempt.caller.nameAddr },
    { name: 'To', value: attempt.to },
    { name: 'Call-ID', value: attempt.callId },
    { name: 'CSeq', value: `${attempt.cseq} CANCEL` },
    ...extra,
  ];
  return { request: createRequest('CANCEL', attempt.requestUri, headers), to: attempt.calleePeer };
}

/** This element's Via with rport asked for (RFC 3581); `transport` when the message goes over another. */
export function ownVia(self: SipSelf, branch: string, transport: SipTransportName = self.transport): string {
  return `${viaProtocol(transport)} ${formatHostPort(self.host, self.port)};branch=${branch};rport`;
}

/** The first Route's address when it has one (loose routing, §16.12), else the Request-URI's, else the peer. */
function nextHop(target: DialogParty, uri: string): SipPeer {
  const first = target.route[0];
  const hop = (first === undefined ? undefined : uriTarget(uriOf(first) ?? '')) ?? uriTarget(uri);
  return hop ? { ...hop, connection: target.peer.connection } : target.peer;
}

function uriOf(nameAddr: string): string | undefined {
  try {
    return parseNameAddr(nameAddr).uri;
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}
