import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiApp } from './api-app.ts';
import { apiBase, InMemoryPool, sleep } from './api-test-support.ts';

/** `name{labels} value` lines of a Prometheus text exposition, by series. */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

describe('GET /metrics', () => {
  const pool = new InMemoryPool();
  let app: ReturnType<typeof createApiApp>;
  const scrape = async () => {
    const res = await app.request(`${apiBase}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };

  before(async () => {
    await pool.start();
    app = createApiApp({ state: pool.state, controller: pool.controller });
    await pool.agentUp('m1');
    await pool.agentUp('m2');
    await pool.status('m1', 'alpha', { sessions: 12, accepted: 40, forced: 2, upstreamFailures: 1 });
    await pool.status('m1', 'beta', { flows: 3 });
    await pool.status('m2', 'alpha', {});
    await pool.status('m2', 'beta', {});
  });
  after(() => pool.close());

  it('sessions per member and service, and the counters the agents keep', async () => {
    const m = await scrape();
    assert.equal(m.get('ebb_sessions{member="m1",service="alpha"}'), 12);
    assert.equal(m.get('ebb_sessions{member="m2",service="beta"}'), 0);
    assert.equal(m.get('ebb_sessions_accepted_total{member="m1",service="alpha"}'), 40);
    assert.equal(m.get('ebb_sessions_forced_total{member="m1",service="alpha"}'), 2);
    assert.equal(m.get('ebb_upstream_failures_total{member="m1",service="alpha"}'), 1);
    assert.equal(m.get('ebb_sip_flows{member="m1",service="beta"}'), 3, 'sip flows open (SPEC §14)');
    assert.equal(m.get('ebb_sip_flows{member="m1",service="alpha"}'), 0);
  });

  it('agent liveness, state (one label per state), accepting, the capacity guard inputs', async () => {
    let m = await scrape();
    assert.equal(m.get('ebb_agent_up{member="m1"}'), 1);
    assert.equal(m.get('ebb_service_state{member="m1",service="alpha",state="running"}'), 1);
    assert.equal(m.get('ebb_service_state{member="m1",service="alpha",state="paused"}'), 0);
    assert.equal(m.get('ebb_service_accepting{member="m1",service="alpha"}'), 1);
    assert.equal(m.get('ebb_pool_accepting_members{service="alpha"}'), 2);
    assert.equal(m.get('ebb_pool_min_accepting{service="alpha"}'), 1);
    assert.equal(m.get('ebb_pool_min_accepting{service="beta"}'), 2, 'a service may set its own');

    const drainStartedAt = Date.now() - 90_000;
    await pool.status('m1', 'alpha', { state: 'paused', accepting: false, drainStartedAt });
    await pool.store.delete(pool.state.keys.agent('m2'));
    m = await scrape();
    assert.equal(m.get('ebb_service_state{member="m1",service="alpha",state="running"}'), 0);
    assert.equal(m.get('ebb_service_state{member="m1",service="alpha",state="paused"}'), 1);
    assert.equal(m.get('ebb_service_accepting{member="m1",service="alpha"}'), 0);
    assert.equal(m.get('ebb_agent_up{member="m2"}'), 0);
    // Operator audit #36: the last state of a member whose agent is down is not its state.
    assert.equal(m.get('ebb_service_state{member="m2",service="alpha",state="running"}'), 0);
    assert.equal(m.get('ebb_service_state{member="m2",service="alpha",state="unknown"}'), 1);
    assert.equal(m.get('ebb_service_state{member="m1",service="alpha",state="unknown"}'), 0);
    assert.equal(m.get('ebb_service_accepting{member="m2",service="alpha"}'), 0, 'no agent, not accepting');
    assert.equal(m.get('ebb_pool_accepting_members{service="alpha"}'), 0);
    const drainSeconds = m.get('ebb_service_drain_seconds{member="m1",service="alpha"}')!;
    assert.ok(drainSeconds >= 90 && drainSeconds < 100, `drain in progress for ${drainSeconds} s`);
    assert.equal(m.get('ebb_service_drained{member="m1",service="alpha"}'), 0);
    assert.equal(m.get('ebb_member_ready_for_offline{member="m1"}'), 0);
    await pool.agentUp('m2');
  });

  it('drain durations: a histogram observed on service.drained', async () => {
    const drainedAt = Date.now();
    await pool.status('m1', 'alpha', { sessions: 0, drainedAt });
    await pool.event({
      code: 'service.drained',
      member: 'm1',
      service: 'alpha',
      data: { drainMs: 42_000, forced: 0 },
    });
    await sleep(20);
    const m = await scrape();
    assert.equal(m.get('ebb_drain_duration_seconds_count{member="m1",service="alpha"}'), 1);
    assert.equal(m.get('ebb_drain_duration_seconds_sum{member="m1",service="alpha"}'), 42);
    assert.equal(m.get('ebb_drain_duration_seconds_bucket{le="30",member="m1",service="alpha"}'), 0);
    assert.equal(m.get('ebb_drain_duration_seconds_bucket{le="60",member="m1",service="alpha"}'), 1);
    assert.equal(m.get('ebb_service_drain_seconds{member="m1",service="alpha"}'), 0, 'the drain is over');
    assert.equal(m.get('ebb_service_drained{member="m1",service="alpha"}'), 1);
    assert.equal(m.get('ebb_events_total{code="service.drained"}'), 1);
  });

  it('each app has its own registry, so several live in one process', async () => {
    const other = createApiApp({ state: pool.state, controller: pool.controller });
    const res = await other.request(`${apiBase}/metrics`);
    assert.equal(res.status, 200);
    const m = parse(await res.text());
    assert.equal(m.get('ebb_sessions{member="m1",service="alpha"}'), 0);
    assert.equal(m.get('ebb_event_stream_clients'), 0);
    assert.equal(
      m.has('ebb_drain_duration_seconds_count{member="m1",service="alpha"}'),
      false,
      'its own histogram',
    );
  });
});
