/**
 * A pool config for the benchmarks that run Ebb as separate processes (`ebb agent` per member, `ebb dns`,
 * `ebb api`) or as one `ebb up`, on SQLite or etcd: real members on loopback aliases 127.0.<net>.N that
 * serve tcp services, and optionally many simulated members (127.1.x.y, one tcp service each) that nothing
 * serves: `etcd-simulator.ts` writes their agent and status keys instead. Written by the harness's typed
 * config builder (test/harness/pool-config.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackNet, poolYaml, tcpService, type MemberInput } from '../../test/harness/pool-config.ts';
import { freePort } from '../../test/harness/ports.ts';
import { simulatedAddress, simulatedId } from './etcd-sim-protocol.ts';

export interface BenchService {
  id: string;
  /** `builtin:echo` or `host:port`. */
  upstream: string;
}

export interface BenchMember {
  id: string;
  address: string;
  /** Service id → port. */
  ports: Record<string, number>;
}

export interface PoolLayoutOptions {
  /** `sqlite:<path>` or `etcd://host:port,...`; default: SQLite in `dir`. */
  store?: string;
  /** Scratch dir for the config and the agents' local state (the caller removes it). */
  dir: string;
  /** Members whose agents run (m1, m2, …). */
  real: number;
  /** The services of each real member; the first is the primary (the pool name's A records). */
  services: BenchService[];
  /** Simulated members s0001, s0002, …, each with one tcp service `simService`. */
  simulated?: number;
  simService?: string;
  dnsTtl?: number;
  leaseTtl?: string;
  minAccepting?: number;
  /**
   * `agent.workers`: threads per tcp/http/sip proxy listener (SPEC §13). Required, and always written:
   * its default is the CPU count, which would silently turn a one-thread figure into an N-thread one.
   */
  agentWorkers: number;
}

export interface SimulatedMember {
  id: string;
  address: string;
}

export interface PoolLayout {
  name: string;
  fqdn: string;
  configPath: string;
  apiUrl: string;
  dns: { host: string; port: number };
  store: string;
  real: BenchMember[];
  simulated: SimulatedMember[];
  simService: string;
  leaseTtl: string;
}

export async function writePoolLayout(options: PoolLayoutOptions): Promise<PoolLayout> {
  const net = loopbackNet();
  const name = `bench${net}`;
  const fqdn = `${name}.ebb.test`;
  const real: BenchMember[] = [];
  for (let i = 0; i < options.real; i++) {
    const address = `127.0.${net}.${i + 1}`;
    const ports: Record<string, number> = {};
    for (const s of options.services) ports[s.id] = await freePort(address);
    real.push({ id: `m${i + 1}`, address, ports });
  }
  const simService = options.simService ?? 'sim';
  const simulated = Array.from({ length: options.simulated ?? 0 }, (_, i) => ({
    id: simulatedId(i),
    address: simulatedAddress(i),
  }));
  const apiPort = await freePort();
  const dnsPort = await freePort();
  const store = options.store ?? `sqlite:${join(options.dir, 'state.db')}`;
  const leaseTtl = options.leaseTtl ?? '5s';
  const members: MemberInput[] = [
    ...real.map((m) => ({
      id: m.id,
      address: m.address,
      services: options.services.map((s) => tcpService(s.id, m.ports[s.id]!, s.upstream)),
    })),
    ...simulated.map((m) => ({ id: m.id, address: m.address, services: [tcpService(simService, 7000)] })),
  ];
  const yaml = poolYaml(
    {
      pool: { name, fqdn, minAccepting: options.minAccepting ?? 1, dnsTtl: options.dnsTtl ?? 5 },
      store,
      dns: { listen: `127.0.0.1:${dnsPort}` },
      api: { listen: `127.0.0.1:${apiPort}` },
      agent: {
        leaseTtl,
        localState: join(options.dir, 'local'),
        workers: options.agentWorkers,
      },
      members,
    },
    // One line per member: the config of a 3,000-member pool stays small to parse.
    { compactMembers: simulated.length > 0 },
  );
  const configPath = join(options.dir, 'pool.yaml');
  writeFileSync(configPath, yaml);
  return {
    name,
    fqdn,
    configPath,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    dns: { host: '127.0.0.1', port: dnsPort },
    store,
    real,
    simulated,
    simService,
    leaseTtl,
  };
}
