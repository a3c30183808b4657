import { useEffect, useState } from 'preact/hooks';
import { checkAccess, eventsUrl } from './api-client.ts';
import { eventCodes, type PoolEvent, type PoolStatus, type SessionsUpdate } from './types.ts';

/** `unauthorised`: the API wants a token (401) and this tab has none, or not a valid one. */
export type Connection = 'connecting' | 'live' | 'reconnecting' | 'unauthorised';

/** Total sessions of one member at one moment, for the drain-progress chart. */
export interface Sample {
  t: number;
  total: number;
}

export interface LiveState {
  pool: PoolStatus | null;
  connection: Connection;
  /** When the stream was lost: the pool shown is as of then (null while live, or before any data). */
  lostAt: number | null;
  /** SPEC §2 events, newest first. */
  events: PoolEvent[];
  /** Per member: total sessions over time, oldest first. */
  history: ReadonlyMap<string, Sample[]>;
  /** Events the server dropped because this page lagged (it then sent a fresh snapshot). */
  missed: number;
  /** Bumped on every change, so views can tell a new state from an old one. */
  version: number;
}

const keptEvents = 100;
const keptSamples = 3000;
/** A flat line still gets a point this often, so the chart moves on while nothing changes. */
const sampleEveryMs = 1000;

/**
 * The pool as the page sees it: a snapshot from `GET /v1/events` (`hello`), kept current by the stream's
 * `pool` and `sessions` events. The browser's EventSource reconnects by itself; every reconnection starts
 * with a fresh `hello`, so nothing needs replaying. Listeners are told at most once per animation frame.
 */
export class LivePool {
  private state: LiveState = {
    pool: null,
    connection: 'connecting',
    lostAt: null,
    events: [],
    history: new Map(),
    missed: 0,
    version: 0,
  };
  private readonly listeners = new Set<(state: LiveState) => void>();
  private source: EventSource | null = null;
  private ticker: number | undefined;
  private frame: number | undefined;
  private retry: number | undefined;
  private stopped = false;
  private readonly url: () => string;

  /** `url` is read at every connection, so it carries the tab's current token. */
  constructor(url: () => string = eventsUrl) {
    this.url = url;
  }

  get current(): LiveState {
    return this.state;
  }

  start(): void {
    this.stopped = false;
    if (this.source) return;
    const source = new EventSource(this.url());
    this.source = source;
    source.addEventListener('error', () => {
      if (this.source !== source) return;
      this.lost();
      if (source.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      // The server answered with an error status and the browser gave up. EventSource does not say
      // which: ask. A 401 waits for a token; anything else is tried again a little later.
      source.close();
      this.source = null;
      window.clearInterval(this.ticker);
      void checkAccess().then((access) => {
        if (this.stopped || this.source) return;
        if (access === 'needs-token') this.update({ connection: 'unauthorised' });
        else this.retry = window.setTimeout(() => this.stopped || this.start(), 3000);
      });
    });
    const snapshot = (e: MessageEvent<string>) => this.setPool(JSON.parse(e.data) as PoolStatus);
    source.addEventListener('hello', snapshot);
    source.addEventListener('pool', snapshot);
    source.addEventListener('resync', (e: MessageEvent<string>) => {
      const { dropped, pool } = JSON.parse(e.data) as { dropped: number; pool: PoolStatus };
      this.state = { ...this.state, missed: this.state.missed + dropped };
      this.setPool(pool);
    });
    source.addEventListener('sessions', (e: MessageEvent<string>) =>
      this.setSessions(JSON.parse(e.data) as SessionsUpdate),
    );
    for (const code of eventCodes) {
      source.addEventListener(code, (e: MessageEvent<string>) =>
        this.addEvent(JSON.parse(e.data) as PoolEvent),
      );
    }
    this.ticker = window.setInterval(() => this.sample(Date.now()), sampleEveryMs);
  }

  stop(): void {
    this.stopped = true;
    this.source?.close();
    this.source = null;
    window.clearInterval(this.ticker);
    window.clearTimeout(this.retry);
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    this.frame = undefined;
  }

  /**
   * Starts over with the tab's current token (entered or forgotten): nothing seen with the old one is
   * kept on screen.
   */
  restart(): void {
    this.stop();
    this.update({
      pool: null,
      connection: 'connecting',
      lostAt: null,
      events: [],
      history: new Map(),
      missed: 0,
    });
    this.start();
  }

  /** The stream broke: what is shown is from the moment it broke (kept when it was already broken). */
  private lost(): void {
    const { connection, lostAt, pool } = this.state;
    this.update({
      connection: 'reconnecting',
      lostAt: lostAt ?? (connection === 'live' && pool ? Date.now() : null),
    });
  }

  subscribe(listener: (state: LiveState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setPool(pool: PoolStatus): void {
    this.update({ pool, connection: 'live', lostAt: null });
    this.sample(Date.now());
  }

  private setSessions(update: SessionsUpdate): void {
    const pool = this.state.pool;
    if (!pool) return;
    const members = pool.members.map((m) =>
      m.id !== update.member
        ? m
        : {
            ...m,
            services: m.services.map((s) =>
              s.id !== update.service
                ? s
                : { ...s, sessions: update.sessions, accepted: update.accepted, forced: update.forced },
            ),
          },
    );
    this.update({ pool: { ...pool, members } });
    this.sample(Date.now());
  }

  private addEvent(event: PoolEvent): void {
    this.update({ events: [event, ...this.state.events].slice(0, keptEvents) });
  }

  /** Appends each member's total when it changed, or when its last point is older than a second. */
  private sample(t: number): void {
    const pool = this.state.pool;
    if (!pool) return;
    let changed = false;
    const history = new Map(this.state.history);
    for (const member of pool.members) {
      const total = member.services.reduce((sum, s) => sum + s.sessions, 0);
      const samples = history.get(member.id) ?? [];
      const last = samples.at(-1);
      if (last && last.total === total && t - last.t < sampleEveryMs) continue;
      history.set(member.id, [...samples, { t, total }].slice(-keptSamples));
      changed = true;
    }
    if (changed) this.update({ history });
  }

  private update(patch: Partial<LiveState>): void {
    this.state = { ...this.state, ...patch, version: this.state.version + 1 };
    if (this.frame !== undefined) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = undefined;
      for (const listener of [...this.listeners]) listener(this.state);
    });
  }
}

/** The live pool as component state; the stream runs while the component is mounted. */
export function useLivePool(pool: LivePool): LiveState {
  const [state, setState] = useState(pool.current);
  useEffect(() => {
    const unsubscribe = pool.subscribe(setState);
    pool.start();
    setState(pool.current);
    return () => {
      unsubscribe();
      pool.stop();
    };
  }, [pool]);
  return state;
}
