export type { Listener, SessionSink } from './listener.ts';
export { TcpListener, formatAddress } from './tcp-listener.ts';
export { createListener } from './create-listener.ts';
