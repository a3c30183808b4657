import { prependVia, removeTopVia } from './message-mutations.ts';
import type { SipRequest } from './sip-message.ts';
import { viaTarget, type SipPeer } from './sip-peer.ts';
import type { Via } from './via.ts';

/**
 * RFC 3261 §18.2.1 and RFC 3581 §4: the receiver of a request writes the source address into the top Via
 * as `received` (when it differs from sent-by, or when rport was asked for) and the source port as
 * `rport`. `via` is the parsed top Via of `req`; both are updated.
 */
export function stampReceived(req: SipRequest, via: Via, from: SipPeer): void {
  const wantsRport = via.params.has('rport') && via.params.get('rport') === null;
  if (!wantsRport && via.host === from.host) return;
  stampVia(via, from);
  removeTopVia(req);
  prependVia(req, via);
}

/** Sets `received`/`rport` on a parsed Via as the receiver would (without touching a message). */
export function stampVia(via: Via, from: SipPeer): Via {
  const wantsRport = via.params.has('rport') && via.params.get('rport') === null;
  if (wantsRport || via.host !== from.host) via.params.set('received', from.host);
  if (wantsRport) via.params.set('rport', String(from.port));
  return via;
}

/** Where the response to a request goes: by its (stamped) top Via, over the connection it came on (§18.2.2). */
export function replyTarget(via: Via, from: SipPeer): SipPeer {
  return { ...viaTarget(via), connection: from.connection, ...sharedOf(from) };
}

/** `{ shared: true }` for a peer met on the shared socket, else nothing (RFC 3581 §4: answer from there). */
export function sharedOf(peer: SipPeer | undefined): { shared?: true } {
  return peer?.shared ? { shared: true } : {};
}
