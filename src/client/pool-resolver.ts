import { Resolver } from 'node:dns/promises';
import { EbbError } from '../core/index.ts';

export interface Endpoint {
  host: string;
  port: number;
  /** The member's host name, from SRV targets. */
  name?: string;
}

export interface PoolResolverOptions {
  /** `host:port` of Ebb's DNS server; omit to use the system resolver. */
  server?: string;
  /** Several `ebb dns` servers, asked in turn when one does not answer (instead of `server`). */
  servers?: string[];
  timeoutMs?: number;
}

/**
 * Resolves the pool through DNS, as a DNS-load-balancing client does (SPEC §4.1, §4.4): SRV
 * `_<service>._<transport>.<fqdn>` when a service is named (members and their listener ports), else the
 * A records of the name with a known port. The server's order is kept: it is already shuffled.
 */
export class PoolResolver {
  private readonly resolver: Resolver;

  constructor(options: PoolResolverOptions = {}) {
    this.resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
    const servers = options.servers ?? (options.server ? [options.server] : []);
    if (servers.length > 0) this.resolver.setServers(servers);
  }

  async resolveService(fqdn: string, service: string, transport: 'tcp' | 'udp'): Promise<Endpoint[]> {
    const records = await this.lookup(() => this.resolver.resolveSrv(`_${service}._${transport}.${fqdn}`));
    const endpoints: Endpoint[] = [];
    for (const record of records) {
      const addresses = await this.lookup(() => this.resolver.resolve4(record.name)).catch(
        () => [] as string[],
      );
      for (const host of addresses) endpoints.push({ host, port: record.port, name: record.name });
    }
    return endpoints;
  }

  async resolveName(name: string, port: number): Promise<Endpoint[]> {
    const addresses = await this.lookup(() => this.resolver.resolve4(name));
    return addresses.map((host) => ({ host, port }));
  }

  private async lookup<T>(query: () => Promise<T[]>): Promise<T[]> {
    try {
      return await query();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // NODATA / NXDOMAIN: no member accepts; the caller reports that, not a resolver failure.
      if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
      throw new EbbError('EBB_DNS_FAILED', `DNS lookup failed: ${code ?? (err as Error).message}`, {
        cause: err,
      });
    }
  }
}
