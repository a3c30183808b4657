import { splitHostPort, type ListenerConfig } from '../config/index.ts';
import { EbbError } from '../core/index.ts';
import type { Listener, SessionSink } from './listener.ts';
import { TcpListener } from './tcp-listener.ts';

/** Builds the front end a listener's config describes, bound to the member's address. */
export function createListener(address: string, config: ListenerConfig, sink: SessionSink): Listener {
  if (config.protocol === 'tcp') {
    const upstream = config.upstream === 'builtin:echo' ? 'echo' : splitHostPort(config.upstream)!;
    return new TcpListener({ host: address, port: config.port, upstream, sink });
  }
  throw new EbbError('EBB_UNSUPPORTED_PROTOCOL', `protocol ${config.protocol} is not supported yet`, {
    exitCode: 2,
  });
}
