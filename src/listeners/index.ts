export type { Listener, SessionSink } from './listener.ts';
export { TcpListener, formatAddress } from './tcp-listener.ts';
export { createListener, type ListenerContext } from './create-listener.ts';
