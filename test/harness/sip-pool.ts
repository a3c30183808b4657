import {
  loopbackMembers,
  loopbackNet,
  poolYaml,
  type ConfigInput,
  type ListenerInput,
} from './pool-config.ts';

/**
 * A pool config for the SIP tests: members on loopback aliases 127.0.<net>.1, .2, … each running the same
 * SIP services (the same port on every member), plus the API and DNS on ports of the given range.
 */
export interface SipServiceSpec {
  id: string;
  port: number;
  /** One listener per transport, all on `port`. */
  transports: Array<'udp' | 'tcp' | 'tls' | 'ws' | 'wss'>;
  /** `builtin:sip-uas`, or `host:port` (the same upstream for every member), or one per transport. */
  upstream: string | Partial<Record<'udp' | 'tcp' | 'tls' | 'ws' | 'wss', string>>;
  /** For a tls or wss listener: its certificate and key files. */
  tls?: { cert: string; key: string };
  reroute?: 'reject' | 'redirect';
  retryAfter?: number;
  /** SPEC §14, on each stream (tcp) listener: over how long idle flows close while paused. */
  closeSpread?: string;
  drainFlows?: boolean;
}

export interface SipPoolOptions {
  /** Workspace directory for the store and the local intents. */
  dir: string;
  members?: number;
  net?: number;
  services: SipServiceSpec[];
  apiPort: number;
  dnsPort: number;
  minAccepting?: number;
  /** `agent.workers` (SPEC §13): threads serving each listener that can be threaded. */
  workers?: number;
}

export interface SipPool {
  yaml: string;
  config: ConfigInput;
  apiUrl: string;
  members: Array<{ id: string; address: string }>;
}

export function sipPool(options: SipPoolOptions): SipPool {
  const upstreamFor = (s: SipServiceSpec, t: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss') =>
    typeof s.upstream === 'string' ? s.upstream : (s.upstream[t] ?? 'builtin:sip-uas');
  const members = loopbackMembers(options.members ?? 2, options.net ?? loopbackNet(), () =>
    options.services.map((s) => ({
      id: s.id,
      ...(s.reroute ? { reroute: s.reroute } : {}),
      ...(s.retryAfter !== undefined ? { retryAfter: s.retryAfter } : {}),
      listeners: s.transports.map((transport): ListenerInput => ({
        protocol: 'sip',
        transport,
        port: s.port,
        upstream: upstreamFor(s, transport),
        ...(s.closeSpread !== undefined ? { closeSpread: s.closeSpread } : {}),
        ...(s.drainFlows !== undefined ? { drainFlows: s.drainFlows } : {}),
        ...((transport === 'tls' || transport === 'wss') && s.tls ? { tls: s.tls } : {}),
      })),
    })),
  );
  const config: ConfigInput = {
    pool: {
      name: `sip${options.apiPort}`,
      fqdn: `sip${options.apiPort}.ebb.test`,
      minAccepting: options.minAccepting ?? 1,
    },
    store: `sqlite:${options.dir}/state.db`,
    dns: { listen: `127.0.0.1:${options.dnsPort}` },
    api: { listen: `127.0.0.1:${options.apiPort}` },
    agent: {
      leaseTtl: '2s',
      localState: `${options.dir}/local`,
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
    },
    members,
  };
  return {
    yaml: poolYaml(config),
    config,
    apiUrl: `http://127.0.0.1:${options.apiPort}`,
    members: members.map((m) => ({ id: m.id, address: m.address })),
  };
}
