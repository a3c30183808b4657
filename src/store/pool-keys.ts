/**
 * Where a pool keeps its state in the store. Several pools may share one store; each has its own prefix.
 *
 *   ebb/<pool>/intent/<member>/<service>   durable intent (SPEC §3), written by commands
 *   ebb/<pool>/status/<member>/<service>   observed status, written by the member's agent
 *   ebb/<pool>/agent/<member>              agent liveness, on the agent's lease
 *   ebb/<pool>/event/<time>-<member>-<n>   recent events
 *   ebb/<pool>/audit/<time>-<n>            audit trail
 *   ebb/<pool>/guard/<service>             touched by every intent change of the service (capacity guard)
 */
export class PoolKeys {
  readonly prefix: string;

  constructor(pool: string) {
    this.prefix = `ebb/${pool}/`;
  }

  intent(member: string, service: string): string {
    return `${this.prefix}intent/${member}/${service}`;
  }
  intents(member?: string): string {
    return `${this.prefix}intent/${member ? `${member}/` : ''}`;
  }
  status(member: string, service: string): string {
    return `${this.prefix}status/${member}/${service}`;
  }
  statuses(): string {
    return `${this.prefix}status/`;
  }
  agent(member: string): string {
    return `${this.prefix}agent/${member}`;
  }
  agents(): string {
    return `${this.prefix}agent/`;
  }
  event(at: number, member: string, seq: number): string {
    return `${this.prefix}event/${sortableTime(at)}-${member}-${String(seq).padStart(8, '0')}`;
  }
  events(): string {
    return `${this.prefix}event/`;
  }
  audit(at: number, id: string): string {
    return `${this.prefix}audit/${sortableTime(at)}-${id}`;
  }
  audits(): string {
    return `${this.prefix}audit/`;
  }
  /** Rewritten with every intent change of the service: what racing commands compare (SPEC §5). */
  guard(service: string): string {
    return `${this.prefix}guard/${service}`;
  }
  guards(): string {
    return `${this.prefix}guard/`;
  }

  /** `intent/fe01/echo` → { kind: 'intent', member: 'fe01', service: 'echo' }. */
  parse(key: string): { kind: string; member: string; service: string | null } | null {
    if (!key.startsWith(this.prefix)) return null;
    const [kind, member, service] = key.slice(this.prefix.length).split('/');
    if (!kind || !member) return null;
    return { kind, member, service: service ?? null };
  }
}

function sortableTime(at: number): string {
  return String(at).padStart(15, '0');
}
