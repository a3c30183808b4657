import type { ListenerConfig } from '../config/index.ts';
import { EbbError } from '../core/index.ts';
import type { Listener, ListenerEvents } from './listener.ts';
import { listenerKinds, type ListenerContext, type ListenerFactory } from './listener-kinds.ts';
import { ThreadedListener, threadable } from './threaded/threaded-listener.ts';

/** Builds the front end a listener's config describes, bound to the member's address. */
export function createListener(
  address: string,
  config: ListenerConfig,
  events: ListenerEvents,
  context: ListenerContext,
): Listener {
  const factory = listenerKinds[config.protocol] as ListenerFactory | undefined;
  if (!factory) {
    throw new EbbError('EBB_UNSUPPORTED_PROTOCOL', `protocol ${config.protocol} is not supported yet`, {
      exitCode: 2,
    });
  }
  const workers = context.workers ?? 1;
  if (workers > 1 && !context.reusePort && threadable(config)) {
    // The listener the threads run, built here only for its description (it is never opened).
    const description = factory(address, config, { ...context, events: { onChange: () => {} } }).description;
    return new ThreadedListener(address, config, events, context, description);
  }
  return factory(address, config, { ...context, events });
}
