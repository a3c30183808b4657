import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolState, PoolStatus } from '../control/index.ts';
import { EventCode, ServiceState, type EbbEvent } from '../core/index.ts';

/** What the metrics read: `PoolState`, or a fake in tests. */
export type MetricsSource = Pick<PoolState, 'snapshot' | 'onEvent' | 'serviceConfig'>;

export interface PoolMetricsOptions {
  /** Node's own process metrics (`process_*`, `nodejs_*`); off in tests that build many apps. */
  processMetrics?: boolean;
  /** Connected event-stream clients. */
  streamClients?: () => number;
}

/** Drains last seconds to hours; the buckets follow what an operator would alert on. */
const drainBuckets = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400];

/**
 * `GET /metrics` (SPEC §7) in Prometheus' text format, from a registry of its own so several API apps can
 * live in one process. Gauges and counters are read from the pool status at scrape time; the counters the
 * agents keep (accepted, forced, upstream failures) restart from 0 when a service restarts, which
 * Prometheus' `rate()` and `increase()` treat as a counter reset. Drain durations are observed here, from
 * the `service.drained` events this process hears.
 */
export class PoolMetrics {
  readonly registry = new Registry();
  private readonly source: MetricsSource;
  private scraped: PoolStatus | null = null;
  private readonly unsubscribe: () => void;
  private readonly drainDuration: Histogram<'member' | 'service'>;
  private readonly events: Counter<'code'>;

  constructor(source: MetricsSource, options: PoolMetricsOptions = {}) {
    this.source = source;
    const registers = [this.registry];
    const pool = () => this.current();
    const perService = (
      name: string,
      help: string,
      value: (s: PoolStatus['members'][number]['services'][number]) => number,
      type: 'gauge' | 'counter' = 'gauge',
    ) => {
      const labelNames = ['member', 'service'] as const;
      if (type === 'counter') {
        return new Counter({
          name,
          help,
          labelNames,
          registers,
          collect() {
            this.reset();
            for (const m of pool().members)
              for (const s of m.services) this.inc({ member: m.id, service: s.id }, value(s));
          },
        });
      }
      return new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const m of pool().members)
            for (const s of m.services) this.set({ member: m.id, service: s.id }, value(s));
        },
      });
    };

    new Gauge({
      name: 'ebb_agent_up',
      help: "1 while the member's agent holds its lease, 0 when it is down",
      labelNames: ['member'],
      registers,
      collect() {
        for (const m of pool().members) this.set({ member: m.id }, m.agent === 'up' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ebb_member_ready_for_offline',
      help: '1 when every service of the member is stopped, or paused/stopping and drained',
      labelNames: ['member'],
      registers,
      collect() {
        for (const m of pool().members) this.set({ member: m.id }, m.readyForOffline ? 1 : 0);
      },
    });
    perService('ebb_sessions', 'Live sessions of the service on the member', (s) => s.sessions);
    new Gauge({
      name: 'ebb_sessions_by_kind',
      help: 'Live sessions by kind: tcp connections, sip dialogs, http requests and websockets (SPEC §10)',
      labelNames: ['member', 'service', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const m of pool().members)
          for (const s of m.services)
            for (const [kind, n] of Object.entries(s.sessionsByKind))
              this.set({ member: m.id, service: s.id, kind }, n);
      },
    });
    perService(
      'ebb_idle_connections',
      'http: open client connections with nothing in flight (idle keep-alive); not sessions',
      (s) => s.idleConnections,
    );
    perService(
      'ebb_sip_flows',
      'sip over tcp/tls/ws: client flows still open (registrations ride on them); closed while paused',
      (s) => s.flows,
    );
    perService('ebb_service_accepting', '1 while the service takes new sessions', (s) => Number(s.accepting));
    perService('ebb_service_drained', '1 while the service is paused or stopping with 0 sessions', (s) =>
      Number(s.drained),
    );
    perService(
      'ebb_service_drain_seconds',
      'Seconds since the drain in progress began (pause or graceful stop); 0 when no drain is in progress',
      (s) =>
        s.drainStartedAt !== null && s.drainedAt === null && (s.state === 'paused' || s.state === 'stopping')
          ? Math.max(0, (Date.now() - s.drainStartedAt) / 1000)
          : 0,
    );
    perService(
      'ebb_sessions_accepted_total',
      'Sessions the service accepted since its agent started',
      (s) => s.accepted,
      'counter',
    );
    perService(
      'ebb_sessions_forced_total',
      'Sessions ended by a deadline or a hard stop since the service last started',
      (s) => s.forced,
      'counter',
    );
    perService(
      'ebb_sessions_refused_total',
      'New sessions turned away while refusing where the protocol answers (SIP 503/302); a paused tcp listener is refused by the kernel and not counted',
      (s) => s.refused,
      'counter',
    );
    perService(
      'ebb_upstream_failures_total',
      'Sessions the service accepted but could not connect upstream (the client was closed)',
      (s) => s.upstreamFailures,
      'counter',
    );
    new Gauge({
      name: 'ebb_service_state',
      help: 'The observed state of the service: 1 for the current state, 0 for the others; `unknown` while its agent is down',
      labelNames: ['member', 'service', 'state'],
      registers,
      collect() {
        // An agent that is down reports nothing: its last state is not the current one (operator audit #36).
        for (const m of pool().members)
          for (const s of m.services) {
            const current = m.agent === 'up' ? s.state : 'unknown';
            for (const state of [...Object.values(ServiceState), 'unknown'])
              this.set({ member: m.id, service: s.id, state }, current === state ? 1 : 0);
          }
      },
    });
    // A service may set its own minAccepting (per member in the config); the strictest one counts.
    const minAccepting = (snapshot: PoolStatus, service: string) =>
      Math.max(
        ...snapshot.members
          .filter((m) => m.services.some((s) => s.id === service))
          .map((m) => source.serviceConfig(m.id, service)?.minAccepting ?? snapshot.pool.minAccepting),
      );
    new Gauge({
      name: 'ebb_pool_accepting_members',
      help: 'Members whose live agent has the service accepting new sessions',
      labelNames: ['service'],
      registers,
      collect() {
        for (const [service, count] of accepting(pool())) this.set({ service }, count);
      },
    });
    new Gauge({
      name: 'ebb_pool_min_accepting',
      help: 'The capacity guard: fewest members that must keep accepting the service (SPEC §5)',
      labelNames: ['service'],
      registers,
      collect() {
        const snapshot = pool();
        for (const service of accepting(snapshot).keys())
          this.set({ service }, minAccepting(snapshot, service));
      },
    });
    this.drainDuration = new Histogram({
      name: 'ebb_drain_duration_seconds',
      help: 'How long completed drains took, from pause (or graceful stop) to the last session ending',
      labelNames: ['member', 'service'],
      buckets: drainBuckets,
      registers,
    });
    this.events = new Counter({
      name: 'ebb_events_total',
      help: 'Pool events this API process has seen, by code (SPEC §2)',
      labelNames: ['code'],
      registers,
    });
    const streamClients = options.streamClients;
    if (streamClients) {
      new Gauge({
        name: 'ebb_event_stream_clients',
        help: 'Clients connected to GET /v1/events',
        registers,
        collect() {
          this.set(streamClients());
        },
      });
    }
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.unsubscribe = source.onEvent((event) => this.observe(event));
  }

  /** The text exposition of every metric, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    this.scraped = this.source.snapshot();
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.scraped = null;
    }
  }

  close(): void {
    this.unsubscribe();
  }

  private observe(event: EbbEvent): void {
    this.events.inc({ code: event.code });
    if (event.code !== EventCode.serviceDrained || !event.service) return;
    const drainMs = event.data?.['drainMs'];
    if (typeof drainMs !== 'number' || !Number.isFinite(drainMs) || drainMs < 0) return;
    this.drainDuration.observe({ member: event.member, service: event.service }, drainMs / 1000);
  }

  /** One snapshot per scrape, so every metric of a scrape describes the same moment. */
  private current(): PoolStatus {
    return this.scraped ?? this.source.snapshot();
  }
}

function accepting(snapshot: PoolStatus): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of snapshot.members)
    for (const s of m.services) counts.set(s.id, (counts.get(s.id) ?? 0) + (s.accepting ? 1 : 0));
  return counts;
}
