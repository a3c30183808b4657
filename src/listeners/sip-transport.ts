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
  /**
   * Stops taking new traffic on its port (UDP: closes the socket; TCP: the listening socket) but keeps
   * the connections open, for a front end that hands its port to another one beside it (SPEC §13).
   */
  stopListening?(): Promise<void>;
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
  /** SO_REUSEPORT: the port is shared with front ends of the same config beside it (SPEC §13). */
  reusePort?: boolean;
  /** UDP: mark what arrives as come in on the shared port (`SipPeer.shared`). */
  shared?: boolean;
  /** Where its TCP connection ids start, so two transports of one front end never share an id. */
  firstConnectionId?: number;
}
