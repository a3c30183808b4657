import { splitHostPort, type ListenerConfig, type ServiceConfig } from '../config/index.ts';
import { EbbError, parseDuration, type PoolView } from '../core/index.ts';
import type { Listener, SessionSink } from './listener.ts';
import { SipListener } from './sip-listener.ts';
import { acceptingMember } from './sip-redirect.ts';
import { TcpListener } from './tcp-listener.ts';

/** What a listener may need to know beyond its own config (e.g. where to redirect while paused). */
export interface ListenerContext {
  member: string;
  service: ServiceConfig;
  /** The pool as the store describes it now. */
  view: () => PoolView;
}

/** Builds the front end a listener's config describes, bound to the member's address. */
export function createListener(
  address: string,
  config: ListenerConfig,
  sink: SessionSink,
  context: ListenerContext,
): Listener {
  if (config.protocol === 'tcp') {
    const upstream = config.upstream === 'builtin:echo' ? 'echo' : splitHostPort(config.upstream)!;
    return new TcpListener({ host: address, port: config.port, upstream, sink });
  }
  if (config.protocol === 'sip') {
    const service = context.service;
    return new SipListener({
      host: address,
      port: config.port,
      transport: config.transport,
      upstream: config.upstream === 'builtin:sip-uas' ? 'builtin' : splitHostPort(config.upstream)!,
      sink,
      retryAfter: service.retryAfter,
      redirect:
        service.reroute === 'redirect'
          ? () => acceptingMember(context.view(), context.member, service.id)
          : undefined,
      maxIdleMs:
        service.sipMaxIdle === undefined ? undefined : parseDuration(service.sipMaxIdle, 'sipMaxIdle'),
    });
  }
  throw new EbbError('EBB_UNSUPPORTED_PROTOCOL', `protocol ${config.protocol} is not supported yet`, {
    exitCode: 2,
  });
}
