export { ListenerState, type Listener, type ListenerEvents, type ListenerNote } from './listener.ts';
export { emptyStats, sumStats, type ListenerStats } from './listener-stats.ts';
export { ListenerLifecycle, type ListenerDriver } from './listener-lifecycle.ts';
export { LifecycleListener } from './lifecycle-listener.ts';
export { TcpListener, createTcpListener, type TcpListenerOptions } from './tcp-listener.ts';
export { createListener } from './create-listener.ts';
export { KernelListener, createKernelListener, type KernelListenerOptions } from './kernel-listener.ts';
export {
  listenerKinds,
  type ListenerBuild,
  type ListenerContext,
  type ListenerFactory,
} from './listener-kinds.ts';
export {
  SipListener,
  SIP_DEFAULT_MAX_IDLE_MS,
  createSipListener,
  type SipListenerOptions,
} from './sip-listener.ts';
export { SipBuiltinUas } from './sip-builtin-uas.ts';
export { SIP_UDP_BUFFER_BYTES, SipUdpTransport } from './sip-udp-transport.ts';
export { SipTcpTransport } from './sip-tcp-transport.ts';
export { OWN_FIRST_CONNECTION_ID, SipSharedPortTransport } from './sip-shared-port-transport.ts';
export type { SipTransport, SipTransportEvents } from './sip-transport.ts';
// The shared listening-socket helper lives in src/net (DNS uses it too); re-exported for listener kinds.
export { formatAddress, TcpListeningSocket, bindUdp, type TcpListenOptions } from '../net/index.ts';
export {
  EmbeddedListener,
  EmbeddedSessionKind,
  type AttachableServer,
  type EmbeddedListenerOptions,
  type WebSocketLike,
  type WebSocketServerLike,
} from './embedded/index.ts';
