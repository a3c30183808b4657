export { ErrorThrottle, type CodedError } from './error-throttle.ts';
export { formatAddress } from './format-address.ts';
export { TcpListeningSocket, type TcpListenOptions } from './tcp-listening-socket.ts';
export { bindUdp, type UdpBindOptions } from './udp-socket.ts';
export { bindBesidePredecessor, probePortFree } from './port-probe.ts';
export { ensureRequestMigration, type RequestMigration } from './migrate-requests.ts';
