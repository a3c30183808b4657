import type { ServiceState, StartupType } from './lifecycle.ts';

/**
 * What the re-routing parts (DNS, agent-check, readiness, redirects) need to know about the pool:
 * a plain snapshot, built from the config plus the store's live state.
 */
export interface PoolView {
  name: string;
  fqdn: string;
  dnsTtl: number;
  members: MemberView[];
}

export interface MemberView {
  id: string;
  /** IPv4 and/or IPv6 addresses of the member. */
  addresses: string[];
  agentUp: boolean;
  /** In config order: the first is the member's primary service. */
  services: ServiceView[];
}

export interface ServiceView {
  id: string;
  state: ServiceState;
  startup: StartupType;
  /** True when the agent is up and the service takes new sessions. */
  accepting: boolean;
  sessions: number;
  listeners: ListenerView[];
}

export interface ListenerView {
  protocol: 'tcp' | 'sip' | 'http';
  /** For sip: udp or tcp. For tcp and http: tcp. */
  transport: 'udp' | 'tcp';
  port: number;
}
