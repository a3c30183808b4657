import { isIP } from 'node:net';
import { formatHostPort } from './host-port.ts';
import { parseSipUri } from './sip-uri.ts';
import { SipParseError } from './sip-parse-error.ts';
import type { Via } from './via.ts';

/** Where a message came from or goes to; on stream transports, also the connection that carries it. */
export interface SipPeer {
  host: string;
  port: number;
  /** The transport's id of a TCP connection; undefined on UDP. A sender tries it first (RFC 3261 §18.2.2). */
  connection?: number;
  /**
   * Send over this transport rather than the listener's own: a request too large for UDP goes over TCP
   * (RFC 3261 §18.1.1). A connection id on a UDP listener also means TCP.
   */
  transport?: SipTransportName;
  /**
   * A UDP message that came in on the port the element shares with its siblings (SPEC §13), not on its
   * own: what answers it goes back out of that socket (RFC 3581 §4: a response leaves from where its
   * request arrived, for NATs and symmetric clients). Absent: the element's own socket.
   */
  shared?: boolean;
}

/** What the socket-free SIP cores need from a transport. */
export interface SipSender {
  /**
   * Sends one serialized message. `onFail` is called when it surely did not leave (a TCP connect that
   * failed, a connection too far behind); UDP datagrams are fire and forget.
   */
  send(to: SipPeer, data: Buffer, onFail?: (err: Error) => void): void;
  /** The transport a message to `to` goes over, when it is not the element's own (WebSocket fronts, RFC 7118). */
  transportOf?(to: SipPeer): SipTransportName;
}

export const SipTransportName = { udp: 'udp', tcp: 'tcp', tls: 'tls', ws: 'ws', wss: 'wss' } as const;
export type SipTransportName = (typeof SipTransportName)[keyof typeof SipTransportName];

/** This element's own address, as written in its Via sent-by and Record-Route. */
export interface SipSelf {
  host: string;
  /** Its own port: in its Via (RFC 3261 §16.6 step 8) and Record-Route, so what follows them comes back to it. */
  port: number;
  transport: SipTransportName;
  /**
   * The port it shares with siblings (worker threads, a process handing over; SPEC §13) when it has its
   * own besides: clients send new requests there, so it names this element too. Absent: `port` is both.
   */
  sharedPort?: number;
}

export function peerKey(host: string, port: number): string {
  return formatHostPort(host, port);
}

export function samePeer(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  return a.port === b.port && a.host.toLowerCase() === b.host.toLowerCase();
}

/** `SIP/2.0/UDP`, `SIP/2.0/TCP` or `SIP/2.0/TLS`. */
export function viaProtocol(transport: SipTransportName): string {
  return `SIP/2.0/${transport.toUpperCase()}`;
}

/**
 * Where a response goes (RFC 3261 §18.2.2 with RFC 3581 §4): to `received` when set, else the sent-by
 * host; to `rport` when filled, else the sent-by port (5060, or 5061 for TLS).
 */
export function viaTarget(via: Via): { host: string; port: number } {
  const received = via.params.get('received');
  const rport = via.params.get('rport');
  const host = received ?? via.host;
  const port = rport ? Number(rport) : (via.port ?? (via.transport === 'TLS' ? 5061 : 5060));
  return { host, port };
}

/**
 * The address a sip:/sips: URI names, when it can be reached without DNS: an IP literal or `localhost`
 * (RFC 3263 resolution of names is left to the upstream). Undefined otherwise.
 */
export function uriTarget(uri: string): { host: string; port: number } | undefined {
  try {
    const u = parseSipUri(uri);
    const maddr = u.params.get('maddr');
    const host = maddr ?? u.host;
    const literal = host === 'localhost' ? '127.0.0.1' : host;
    if (isIP(literal) === 0) return undefined;
    return { host: literal, port: u.port ?? (u.scheme === 'sips' ? 5061 : 5060) };
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}

/** True when an address is this element's: its own port or the one it shares. */
export function isSelfAddress(address: { host: string; port: number }, self: SipSelf): boolean {
  if (samePeer(address, self)) return true;
  return self.sharedPort !== undefined && samePeer(address, { host: self.host, port: self.sharedPort });
}

/** True when a sip: URI names this element (its address and port; the default port is 5060). */
export function isSelfUri(uri: string, self: SipSelf): boolean {
  const t = uriTarget(uri);
  return t !== undefined && isSelfAddress(t, self);
}
