import type { ListenerConfig, ServiceConfig } from '../config/index.ts';
import type { PoolView } from '../core/index.ts';
import type { Listener, ListenerEvents } from './listener.ts';
import { createHttpListener } from './http/index.ts';
import { createSipListener } from './sip-listener.ts';
import { createKernelListener } from './kernel-listener.ts';
import { createTcpListener } from './tcp-listener.ts';

/** What a listener may need to know beyond its own config (e.g. where to redirect while paused). */
export interface ListenerContext {
  /** The pool's name (the kernel data path names its nftables table after it); default: `view().name`. */
  pool?: string;
  member: string;
  service: ServiceConfig;
  /** The pool as the store describes it now. */
  view: () => PoolView;
  /**
   * Threads serving each listener that can be served so (SPEC §13, `agent.workers`; see
   * `ThreadedListener`); 1 or absent: the listener runs on the agent's own thread.
   */
  workers?: number;
  /** Bind with SO_REUSEPORT: set for the listener each worker thread runs. */
  reusePort?: boolean;
}

/** Everything a kind's factory is given besides the member's address and its listener config. */
export interface ListenerBuild extends ListenerContext {
  events: ListenerEvents;
}

/** Builds one kind of listener from its config, bound to the member's address. */
export type ListenerFactory<C extends ListenerConfig = ListenerConfig> = (
  address: string,
  config: C,
  build: ListenerBuild,
) => Listener;

/** The config of the listeners of one protocol: its member of the `ListenerConfig` union. */
type ConfigOf<P extends ListenerConfig['protocol']> = Extract<ListenerConfig, { protocol: P }>;

/**
 * The kinds of listener Ebb can build, by protocol: a new kind is its own file plus one line here. A
 * protocol without an entry (http, for now) is refused at start with EBB_UNSUPPORTED_PROTOCOL.
 */
export const listenerKinds: { [P in ListenerConfig['protocol']]?: ListenerFactory<ConfigOf<P>> } = {
  tcp: (address, config, build) =>
    config.mode === 'kernel'
      ? createKernelListener(address, config, build)
      : createTcpListener(address, config, build),
  sip: createSipListener,
  http: createHttpListener,
};
