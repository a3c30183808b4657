export { ErrorThrottle, type CodedError } from './error-throttle.ts';
export { formatAddress } from './format-address.ts';
export { TcpListeningSocket, type TcpListenOptions } from './tcp-listening-socket.ts';
export { bindUdp, type UdpBindOptions } from './udp-socket.ts';
