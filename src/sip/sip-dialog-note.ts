/**
 * What a SIP front end tells the front ends of the same config beside it (worker threads sharing the
 * port, or the process it is handing over to; SPEC §13): "a request inside a dialog I do not know passed
 * through me". The kernel spreads packets over sockets that share a port by their addresses, so an ACK
 * or BYE may reach a front end that did not forward the dialog's INVITE; that one routes it as any
 * record-routing proxy would (RFC 3261 §16.12) and tells the rest, so the one that counts the dialog
 * counts its end. A plain JSON object: it crosses threads and processes as it is.
 */
export interface SipDialogNote {
  kind: 'sip-dialog';
  callId: string;
  /** The tags of the request's From and To: the dialog's two ends, whichever party sent it (§12). */
  fromTag: string;
  toTag: string;
  /** The request's CSeq number. */
  cseq: number;
  event: SipDialogNoteEvent;
}

/**
 * - `ack`: the ACK for a 2xx to the INVITE (§13.2.2.4): the call is set up, no BYE for a lost ACK.
 * - `active`: another request passed (re-INVITE, UPDATE, INFO, …): the dialog is alive (idle timer).
 * - `ended`: a BYE (§15.1: the session ends when it is sent), a terminating NOTIFY (RFC 6665 §4.1.2.3),
 *   or a 481/408 answer to a request inside it (§12.2.1.2).
 */
export const SipDialogNoteEvent = { ack: 'ack', active: 'active', ended: 'ended' } as const;
export type SipDialogNoteEvent = (typeof SipDialogNoteEvent)[keyof typeof SipDialogNoteEvent];
