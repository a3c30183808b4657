import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { ListenError, SocketError } from '../core/index.ts';
import { ErrorThrottle } from './error-throttle.ts';
import { formatAddress } from './format-address.ts';
import { probePortFree } from './port-probe.ts';

export interface UdpBindOptions {
  host: string;
  /** 0: the OS picks one; read it from `socket.address().port`. */
  port: number;
  /** Names the socket's owner in errors (`sip/udp`, `dns.listen (udp)`). */
  label: string;
  /** SO_RCVBUF / SO_SNDBUF asked for, so bursts queue in the kernel instead of being dropped. */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /**
   * SO_REUSEPORT: `true`, shared on purpose (worker threads); unset, set all the same for a successor
   * to bind beside (SPEC §13), after a probe that the port is not held (`port-probe.ts`).
   */
  reusePort?: boolean;
  /**
   * An error on the bound socket (a send without callback that failed: EMSGSIZE, ENETUNREACH, …): the
   * first of each errno at once, then at most once a minute with how many were left out.
   */
  onError?: (err: SocketError) => void;
}

/**
 * Binds a UDP socket (not shared with a cluster primary); rejects with a `ListenError` naming the errno
 * and leaves nothing bound when it cannot.
 */
export async function bindUdp(options: UdpBindOptions): Promise<Socket> {
  if (options.reusePort === undefined) {
    await probePortFree(options.host, options.port, 'udp').catch((err: unknown) => {
      throw new ListenError(
        `${options.label}: cannot bind ${formatAddress(options.host, options.port)}`,
        err,
      );
    });
  }
  const socket = createSocket({
    type: isIPv6(options.host) ? 'udp6' : 'udp4',
    reusePort: options.reusePort ?? true,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(
        new ListenError(`${options.label}: cannot bind ${formatAddress(options.host, options.port)}`, err),
      );
    });
    socket.bind({ address: options.host, port: options.port, exclusive: true }, () => resolve());
  });
  socket.removeAllListeners('error');
  // A size the OS refuses or caps (net.core.rmem_max) is not an error: the default buffer still works.
  if (options.recvBufferSize !== undefined) tryTo(() => socket.setRecvBufferSize(options.recvBufferSize!));
  if (options.sendBufferSize !== undefined) tryTo(() => socket.setSendBufferSize(options.sendBufferSize!));
  const throttle = new ErrorThrottle<SocketError>((err, suppressed) =>
    options.onError?.(
      suppressed === 0
        ? err
        : new SocketError(`${err.message} (${suppressed} more since the last)`, err.cause),
    ),
  );
  const at = formatAddress(options.host, socket.address().port);
  socket.on('error', (err) => throttle.push(new SocketError(`${options.label} ${at}: ${err.message}`, err)));
  return socket;
}

function tryTo(work: () => void): void {
  try {
    work();
  } catch {
    // see the caller
  }
}
