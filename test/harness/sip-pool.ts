/**
 * A pool config for the SIP tests: members on loopback aliases 127.0.<net>.1, .2, … each running the same
 * SIP services (the same port on every member), plus the API and DNS on ports of the given range.
 */
export interface SipServiceSpec {
  id: string;
  port: number;
  /** One listener per transport, all on `port`. */
  transports: Array<'udp' | 'tcp'>;
  /** `builtin:sip-uas`, or `host:port` (the same upstream for every member), or one per transport. */
  upstream: string | Partial<Record<'udp' | 'tcp', string>>;
  reroute?: 'reject' | 'redirect';
  retryAfter?: number;
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
}

export interface SipPool {
  yaml: string;
  apiUrl: string;
  members: Array<{ id: string; address: string }>;
}

export function sipPool(options: SipPoolOptions): SipPool {
  const net = options.net ?? 100 + Math.floor(Math.random() * 100);
  const members = Array.from({ length: options.members ?? 2 }, (_, i) => ({
    id: `m${i + 1}`,
    address: `127.0.${net}.${i + 1}`,
  }));
  const upstreamFor = (s: SipServiceSpec, t: 'udp' | 'tcp') =>
    typeof s.upstream === 'string' ? s.upstream : (s.upstream[t] ?? 'builtin:sip-uas');
  const yaml = [
    `pool: { name: sip${options.apiPort}, fqdn: sip${options.apiPort}.ebb.test, minAccepting: ${options.minAccepting ?? 1} }`,
    `store: sqlite:${options.dir}/state.db`,
    `dns: { listen: 127.0.0.1:${options.dnsPort} }`,
    `api: { listen: 127.0.0.1:${options.apiPort} }`,
    `agent: { leaseTtl: 2s, localState: ${options.dir}/local }`,
    'members:',
    ...members.flatMap((m) => [
      `  - id: ${m.id}`,
      `    address: ${m.address}`,
      '    services:',
      ...options.services.flatMap((s) => [
        `      - id: ${s.id}`,
        ...(s.reroute ? [`        reroute: ${s.reroute}`] : []),
        ...(s.retryAfter !== undefined ? [`        retryAfter: ${s.retryAfter}`] : []),
        '        listeners:',
        ...s.transports.map(
          (t) =>
            `          - { protocol: sip, transport: ${t}, port: ${s.port}, upstream: ${upstreamFor(s, t)} }`,
        ),
      ]),
    ]),
    '',
  ].join('\n');
  return { yaml, apiUrl: `http://127.0.0.1:${options.apiPort}`, members };
}
