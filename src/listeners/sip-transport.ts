import type { SipMessage, SipParseError, SipPeer, SipSender, SipTransportName } from '../sip/index.ts';

/** Where a transport hands what it read. Both are called synchronously and must not throw. */
export interface SipTransportEvents {
  onMessage(message: SipMessage, from: SipPeer): void;
  /** A message that did not frame or parse; on TCP the connection is closed right after. */
  onParseError(error: SipParseError, from: SipPeer): void;
}

/** A bound SIP socket (UDP) or listening server plus its connections (TCP). */
export interface SipTransport extends SipSender {
  readonly name: SipTransportName;
  /** The bound port, once listening (the one the OS chose for port 0). */
  readonly port: number;
  /** Failed accepts on its listening socket (tcp: EMFILE, …); 0 for udp. */
  readonly acceptErrors: number;
  listen(): Promise<void>;
  /** Stream transports: the flows clients opened, and how to close one (SPEC §14). */
  flowIds?(): Iterable<number>;
  readonly flows?: number;
  closeFlow?(id: number): void;
  /** Stops listening and drops every connection. Idempotent. */
  close(): Promise<void>;
}

export interface SipTransportOptions {
  host: string;
  port: number;
  events: SipTransportEvents;
  /** Told of unexpected errors (never of peers' bad input); socket errors come throttled, as EbbErrors. */
  onError?: (err: unknown) => void;
  /** A client's flow opened or closed (stream transports). */
  onFlowsChanged?: () => void;
}
