export type { Listener, SessionSink } from './listener.ts';
export { TcpListener, formatAddress } from './tcp-listener.ts';
export { createListener, type ListenerContext } from './create-listener.ts';
export { SipListener, SIP_DEFAULT_MAX_IDLE_MS, type SipListenerOptions } from './sip-listener.ts';
export { SipBuiltinUas } from './sip-builtin-uas.ts';
export { SIP_UDP_BUFFER_BYTES, SipUdpTransport } from './sip-udp-transport.ts';
export { SipTcpTransport } from './sip-tcp-transport.ts';
export type { SipTransport, SipTransportEvents } from './sip-transport.ts';
