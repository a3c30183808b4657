/**
 * Pool configs for tests and benchmarks, built as typed objects (`ConfigInput`: what the config schema
 * accepts) and written as YAML by the `yaml` package — never by string concatenation.
 */
import { Document, isMap, isSeq } from 'yaml';
import type { ConfigInput } from '../../src/config/index.ts';

export type { ConfigInput };
export type MemberInput = ConfigInput['members'][number];
export type ServiceInput = MemberInput['services'][number];
export type ListenerInput = ServiceInput['listeners'][number];

/**
 * The YAML of `config`, as a user would write it. `compactMembers`: each member on one line (flow
 * style), which keeps the file of a pool with thousands of members small.
 */
export function poolYaml(config: ConfigInput, options: { compactMembers?: boolean } = {}): string {
  // Shared objects are written out again, never as YAML aliases (the config loader allows only 100).
  const doc = new Document(config, { aliasDuplicateObjects: false });
  if (options.compactMembers) {
    const members = doc.get('members');
    if (isSeq(members)) for (const member of members.items) if (isMap(member)) member.flow = true;
  }
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** A random third octet for a test's members (127.0.<net>.1, .2, …), so parallel runs do not collide. */
export function loopbackNet(): number {
  return 100 + Math.floor(Math.random() * 100);
}

/** Members m1…m<count> at 127.0.<net>.1…, each with the services `services(index)` gives (0-based). */
export function loopbackMembers(
  count: number,
  net: number,
  services: (index: number) => ServiceInput[],
  extra: Partial<Omit<MemberInput, 'id' | 'address' | 'services'>> = {},
): MemberInput[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `m${i + 1}`,
    address: `127.0.${net}.${i + 1}`,
    ...extra,
    services: services(i),
  }));
}

/** A service with one tcp listener. */
export function tcpService(
  id: string,
  port: number,
  upstream = 'builtin:echo',
  extra: Partial<Omit<ServiceInput, 'id' | 'listeners'>> = {},
): ServiceInput {
  const listener: ListenerInput = { protocol: 'tcp', port, upstream };
  return { id, ...extra, listeners: [listener] };
}

/** A pool config for tests: members on loopback aliases, ports from a random base so runs do not collide. */
export interface TestPoolOptions {
  members?: number;
  /** Third octet-free loopback base: members get 127.0.<net>.1, .2, … */
  net?: number;
  services?: Array<{
    id: string;
    startup?: ServiceInput['startup'];
    onRestart?: ServiceInput['onRestart'];
    upstream?: string;
  }>;
  store: string;
  localState: string;
  minAccepting?: number;
  /** First of 32 free ports (see `freePortRange`): services take base, base + 1, …; the API base + 31. */
  portBase: number;
  /**
   * The DNS server's port (default base + 30). Never a fixed port such as the config's default (5300):
   * two pools would fight over it (and 5353, mDNS's, is held by avahi on many machines).
   */
  dnsPort?: number;
}

export interface TestPool {
  yaml: string;
  config: ConfigInput;
  apiUrl: string;
  members: Array<{ id: string; address: string; ports: Record<string, number> }>;
}

export function testPool(options: TestPoolOptions): TestPool {
  const base = options.portBase;
  const net = options.net ?? loopbackNet();
  const services = options.services ?? [{ id: 'alpha' }, { id: 'beta' }];
  const apiPort = base + 31;
  const ports = Object.fromEntries(services.map((s, j) => [s.id, base + j]));
  const members = loopbackMembers(options.members ?? 3, net, () =>
    services.map((s) =>
      tcpService(s.id, ports[s.id]!, s.upstream, {
        ...(s.startup ? { startup: s.startup } : {}),
        ...(s.onRestart ? { onRestart: s.onRestart } : {}),
      }),
    ),
  );
  const config: ConfigInput = {
    pool: { name: `test${base}`, fqdn: `test${base}.ebb.test`, minAccepting: options.minAccepting ?? 1 },
    store: options.store,
    dns: { listen: `127.0.0.1:${options.dnsPort ?? base + 30}` },
    api: { listen: `127.0.0.1:${apiPort}` },
    agent: { leaseTtl: '2s', localState: options.localState },
    members,
  };
  return {
    yaml: poolYaml(config),
    config,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    members: members.map((m) => ({ id: m.id, address: m.address, ports: { ...ports } })),
  };
}
