import type { PoolConfig, ServiceConfig } from '../config/index.ts';
import {
  EventCode,
  defaultIntent,
  isKeptIntent,
  isDrained,
  isReadyForOffline,
  parseIntent,
  type EbbEvent,
  type PoolView,
  type ServiceIntent,
  type ServiceStatus,
} from '../core/index.ts';
import { PoolKeys, type KeyValue, type Store, type WatchEvent, type Watcher } from '../store/index.ts';

/** `ebb status --json` (SPEC §7), and the API's `GET /v1/pool`. */
export interface PoolStatus {
  pool: { name: string; fqdn: string; minAccepting: number };
  members: MemberStatus[];
}
export interface MemberStatus {
  id: string;
  address: string;
  agent: 'up' | 'down';
  readyForOffline: boolean;
  services: ServiceStatusView[];
}
export interface ServiceStatusView {
  id: string;
  name: string;
  components: string[];
  state: ServiceStatus['state'];
  startup: ServiceIntent['startup'];
  intent: ServiceIntent['run'];
  accepting: boolean;
  /** The capacity guard's minimum for this service (SPEC §5). */
  minAccepting: number;
  sessions: number;
  /** The same by kind: tcp `connections`, sip `dialogs`, http `requests` and `websockets`. */
  sessionsByKind: Record<string, number>;
  /** http: open client connections with nothing in flight (idle keep-alive): a gauge, not sessions. */
  idleConnections: number;
  /** sip over TCP/TLS/WebSocket: client flows still open (SPEC §14); a gauge. */
  flows: number;
  drained: boolean;
  forced: number;
  accepted: number;
  upstreamFailures: number;
  refused: number;
  drainStartedAt: number | null;
  drainedAt: number | null;
  deadlineAt: number | null;
  reason: string;
  /** Who set the current intent (`config` for the config's default), and when (epoch ms; null then). */
  intentBy: string;
  intentAt: number | null;
  /** The agent has not applied the current intent yet (it is down, busy, or failed and retries). */
  pending: boolean;
  /** What went wrong last: an intent the agent could not apply, else the service's own last error. */
  error: string | null;
  /** The newest intent the agent could not apply (it keeps trying), or null. */
  applyError: ServiceStatus['applyError'];
  /**
   * The pause or stop is one the agent kept from its local copy because the store was wiped or replaced
   * (issue 16, fault 4): `reason` says so; `ebb resume`, or `ebb pause`/`ebb stop` to adopt it, decides.
   */
  kept?: boolean;
}

/**
 * One thing the read model learnt: a member's intent or status for a service, or its agent coming or
 * going. `resync` means the whole view was rebuilt (the store's watch could not resume without a gap).
 */
export type PoolChange =
  | { kind: 'intent' | 'status'; member: string; service: string }
  | { kind: 'agent'; member: string; up: boolean }
  | { kind: 'resync' };

export interface IntentEntry {
  intent: ServiceIntent;
  /** Store revision of the intent key; 0 when the default from the config applies. */
  revision: number;
}

/**
 * The pool as the store describes it, kept current by a watch: the read model behind the API, DNS,
 * readiness and the capacity guard. Listeners hear every change and every event.
 */
export class PoolState {
  readonly config: PoolConfig;
  readonly keys: PoolKeys;
  private readonly store: Store;
  private readonly intents = new Map<string, IntentEntry>();
  private readonly statuses = new Map<string, ServiceStatus>();
  private readonly agents = new Set<string>();
  private readonly changeListeners = new Set<(changes: readonly PoolChange[]) => void>();
  private readonly eventListeners = new Set<(event: EbbEvent) => void>();
  private watcher: Watcher | null = null;
  private readonly revisions = new Map<string, number>();
  /** `member/service` → its config: looked up for every member on every view rebuild. */
  private readonly serviceIndex: Map<string, ServiceConfig>;
  /** The last view built; DNS asks for it on every query, so it is rebuilt only after a change. */
  private cachedView: PoolView | null = null;

  constructor(config: PoolConfig, store: Store) {
    this.config = config;
    this.store = store;
    this.keys = new PoolKeys(config.pool.name);
    this.serviceIndex = new Map(
      config.members.flatMap((m) => m.services.map((s) => [`${m.id}/${s.id}`, s] as const)),
    );
  }

  async start(): Promise<void> {
    // Watch first, then read: a change between the two arrives by the watch, and apply() keeps the
    // newest revision of each key whichever way it came.
    this.watcher ??= await this.store.watch(this.keys.prefix, (events) => this.apply(events), {
      onResync: (rows) => this.resync(rows),
    });
    const rows = await this.store.list(this.keys.prefix);
    this.apply(
      rows.map((r) => ({ type: 'put' as const, key: r.key, value: r.value, modRevision: r.modRevision })),
      false,
    );
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  /** Told of every batch of changes, after the view reflects them. */
  onChange(listener: (changes: readonly PoolChange[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onEvent(listener: (event: EbbEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  agentUp(member: string): boolean {
    return this.agents.has(member);
  }

  intent(member: string, service: string): IntentEntry {
    const stored = this.intents.get(`${member}/${service}`);
    if (stored) return stored;
    const config = this.serviceConfig(member, service);
    return { intent: defaultIntent(config?.startup ?? 'automatic'), revision: 0 };
  }

  status(member: string, service: string): ServiceStatus | undefined {
    return this.statuses.get(`${member}/${service}`);
  }

  serviceConfig(member: string, service: string): ServiceConfig | undefined {
    return this.serviceIndex.get(`${member}/${service}`);
  }

  snapshot(): PoolStatus {
    const { name, fqdn, minAccepting } = this.config.pool;
    return {
      pool: { name, fqdn, minAccepting },
      members: this.config.members.map((member) => {
        const agentUp = this.agents.has(member.id);
        const services = member.services.map((service): ServiceStatusView => {
          const { intent, revision } = this.intent(member.id, service.id);
          const status = this.status(member.id, service.id);
          const state = status?.state ?? 'stopped';
          const sessions = status?.sessions ?? 0;
          return {
            id: service.id,
            name: service.name ?? service.id,
            components: service.components,
            state,
            startup: intent.startup,
            intent: intent.run,
            accepting: agentUp && (status?.accepting ?? false),
            minAccepting: service.minAccepting ?? minAccepting,
            sessions,
            sessionsByKind: status?.sessionsByKind ?? {},
            idleConnections: status?.idleConnections ?? 0,
            flows: status?.flows ?? 0,
            drained: isDrained(state, sessions),
            forced: status?.forced ?? 0,
            accepted: status?.accepted ?? 0,
            upstreamFailures: status?.upstreamFailures ?? 0,
            refused: status?.refused ?? 0,
            drainStartedAt: status?.drainStartedAt ?? null,
            drainedAt: status?.drainedAt ?? null,
            deadlineAt: intent.deadlineAt,
            reason: intent.reason,
            intentBy: intent.by,
            intentAt: intent.at > 0 ? intent.at : null,
            pending: revision > (status?.intentRevision ?? 0),
            kept: isKeptIntent(intent),
            error: status?.applyError
              ? `${status.applyError.message} (${status.applyError.code})`
              : (status?.error ?? null),
            applyError: status?.applyError ?? null,
          };
        });
        return {
          id: member.id,
          address: member.address,
          agent: agentUp ? 'up' : 'down',
          readyForOffline: isReadyForOffline(services),
          services,
        };
      }),
    };
  }

  /** The snapshot the re-routing parts (DNS, agent-check, readiness) answer from. Do not mutate it. */
  view(): PoolView {
    this.cachedView ??= this.buildView();
    return this.cachedView;
  }

  private buildView(): PoolView {
    const { name, fqdn, dnsTtl } = this.config.pool;
    return {
      name,
      fqdn,
      dnsTtl,
      members: this.config.members.map((member) => {
        const agentUp = this.agents.has(member.id);
        return {
          id: member.id,
          addresses: [member.address],
          agentUp,
          services: member.services.map((service) => {
            const status = this.status(member.id, service.id);
            return {
              id: service.id,
              state: status?.state ?? 'stopped',
              startup: this.intent(member.id, service.id).intent.startup,
              accepting: agentUp && (status?.accepting ?? false),
              sessions: status?.sessions ?? 0,
              // SIP over TLS and WebSocket have no SRV name here yet (RFC 3263: _sips._tcp; RFC 7118: none).
              listeners: service.listeners.flatMap((l) =>
                l.transport === 'udp' || l.transport === 'tcp'
                  ? [{ protocol: l.protocol, transport: l.transport, port: l.port }]
                  : [],
              ),
            };
          }),
        };
      }),
    };
  }

  /** Resolves true when `predicate` holds, checking after every change; false after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        unsubscribe();
        resolve(false);
      }, timeoutMs);
      const unsubscribe = this.onChange(() => {
        if (!predicate()) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(true);
      });
    });
  }

  /** For events that are not the agents' own (capacity guard refusals, lapsed leases). */
  emit(event: EbbEvent): void {
    for (const listener of [...this.eventListeners]) listener(event);
  }

  /**
   * The watch lost history (compaction, a trimmed change log): forget everything and rebuild from the
   * store's rows, announcing the agents that went while the watch was blind.
   */
  private resync(rows: KeyValue[]): void {
    const wereUp = [...this.agents];
    this.intents.clear();
    this.statuses.clear();
    this.agents.clear();
    this.revisions.clear();
    this.apply(
      rows.map((r) => ({ type: 'put' as const, key: r.key, value: r.value, modRevision: r.modRevision })),
      false,
      [{ kind: 'resync' }],
    );
    for (const member of wereUp) {
      if (this.agents.has(member)) continue;
      this.emit({ code: EventCode.agentDown, member, at: Date.now(), data: { reason: 'agent gone' } });
    }
  }

  private apply(events: WatchEvent[], announce = true, changes: PoolChange[] = []): void {
    for (const event of events) {
      const parsed = this.keys.parse(event.key);
      if (!parsed) continue;
      if ((this.revisions.get(event.key) ?? 0) > event.modRevision) continue;
      if (parsed.kind !== 'event' && parsed.kind !== 'audit')
        this.revisions.set(event.key, event.modRevision);
      const id = `${parsed.member}/${parsed.service}`;
      if (parsed.kind === 'intent' && parsed.service) {
        const intent = event.value === null ? null : parseIntent(event.value);
        if (intent) this.intents.set(id, { intent, revision: event.modRevision });
        else this.intents.delete(id);
        changes.push({ kind: 'intent', member: parsed.member, service: parsed.service });
      } else if (parsed.kind === 'status' && parsed.service) {
        const status = event.value === null ? null : parseJson<ServiceStatus>(event.value, 'state');
        if (status) this.statuses.set(id, status);
        else this.statuses.delete(id);
        changes.push({ kind: 'status', member: parsed.member, service: parsed.service });
      } else if (parsed.kind === 'agent') {
        const wasUp = this.agents.has(parsed.member);
        if (event.value === null) this.agents.delete(parsed.member);
        else this.agents.add(parsed.member);
        // An agent announces itself; only its disappearance (a lapsed lease) needs telling here.
        if (announce && wasUp && event.value === null) {
          this.emit({
            code: EventCode.agentDown,
            member: parsed.member,
            at: Date.now(),
            data: { reason: 'agent gone' },
          });
        }
        changes.push({ kind: 'agent', member: parsed.member, up: event.value !== null });
      } else if (parsed.kind === 'event' && announce && event.value !== null) {
        const agentEvent = parseJson<EbbEvent>(event.value, 'code');
        if (agentEvent) this.emit(agentEvent);
      }
    }
    if (changes.length === 0) return;
    this.cachedView = null;
    for (const listener of [...this.changeListeners]) listener(changes);
  }
}

function parseJson<T>(text: string, requiredField: string): T | null {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    return value && typeof value[requiredField] === 'string' ? (value as T) : null;
  } catch {
    return null;
  }
}
