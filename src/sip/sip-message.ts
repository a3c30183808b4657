export const SipMessageKind = { request: 'request', response: 'response' } as const;
export type SipMessageKind = (typeof SipMessageKind)[keyof typeof SipMessageKind];

/** One header line as received: its original name (`v`, `VIA`...) and its unfolded, trimmed value. */
export interface SipHeader {
  name: string;
  value: string;
}

interface SipMessageBase {
  /** Always `SIP/2.0`: other versions are refused while parsing (RFC 3261 §7.1). */
  version: string;
  /** In wire order. Content-Length is rewritten from `body` when serializing. */
  headers: SipHeader[];
  body: Buffer;
}

export interface SipRequest extends SipMessageBase {
  kind: typeof SipMessageKind.request;
  /** Case-sensitive (RFC 3261 §7.1). */
  method: string;
  /** The Request-URI as written; `parseSipUri` reads sip: and sips: ones. */
  uri: string;
}

export interface SipResponse extends SipMessageBase {
  kind: typeof SipMessageKind.response;
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

export const SIP_VERSION = 'SIP/2.0';
export const emptyBody: Buffer = Buffer.alloc(0);

export function isRequest(msg: SipMessage): msg is SipRequest {
  return msg.kind === SipMessageKind.request;
}

export function isResponse(msg: SipMessage): msg is SipResponse {
  return msg.kind === SipMessageKind.response;
}

/** A deep copy a proxy can change before forwarding (RFC 3261 §16.6 step 1). */
export function cloneMessage<T extends SipMessage>(msg: T): T {
  return { ...msg, headers: msg.headers.map((h) => ({ ...h })), body: Buffer.from(msg.body) };
}

export function createRequest(
  method: string,
  uri: string,
  headers: SipHeader[] = [],
  body: Buffer = emptyBody,
): SipRequest {
  return { kind: SipMessageKind.request, method, uri, version: SIP_VERSION, headers, body };
}
