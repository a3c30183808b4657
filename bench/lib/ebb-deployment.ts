/**
 * Ebb processes for a `PoolLayout`: either one `ebb up` (agents, DNS and API in one process) or separate
 * processes as on several machines — `ebb agent --member <id>` per real member, `ebb dns`, `ebb api` —
 * sharing the layout's store. Each is the harness's `EbbServer`, ended by its PID (also at cleanup).
 * Plus small clients for the API: commands (timed), the pool status, the event stream.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolStatus, ServiceStatusView } from '../../src/control/index.ts';
import type { EbbEvent } from '../../src/core/index.ts';
import { EbbServer } from '../../test/harness/ebb-process.ts';
import { EventStream } from './event-stream.ts';
import { writePoolLayout, type BenchMember, type BenchService, type PoolLayout } from './pool-layout.ts';
import { benchProcessOptions, scratchDir, track } from './processes.ts';

export type DeploymentMode = 'up' | 'split';

export class EbbDeployment {
  readonly layout: PoolLayout;
  readonly mode: DeploymentMode;
  readonly processes: EbbServer[];

  private constructor(layout: PoolLayout, mode: DeploymentMode, processes: EbbServer[]) {
    this.layout = layout;
    this.mode = mode;
    this.processes = processes;
  }

  /** Starts the processes and waits until each has said it is up (bounded by `timeoutMs` each). */
  static async start(
    layout: PoolLayout,
    mode: DeploymentMode,
    options: {
      timeoutMs?: number;
      nodeArgs?: string[];
      /** Split mode: start only the agents (no `ebb dns`, no `ebb api`). */
      agentsOnly?: boolean;
    } = {},
  ): Promise<EbbDeployment> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const ebb = (name: string, args: string[]) =>
      track(new EbbServer(args, { ...benchProcessOptions(), name, nodeArgs: options.nodeArgs ?? [] }));
    const processes: EbbServer[] = [];
    const deployment = new EbbDeployment(layout, mode, processes);
    try {
      if (mode === 'up') {
        const up = ebb('ebb up', ['up', layout.configPath]);
        processes.push(up);
        await up.waitForOutput(/is up/, timeoutMs);
      } else {
        const config = ['--config', layout.configPath];
        const agents = layout.real.map((m) =>
          ebb(`ebb agent ${m.id}`, [...config, 'agent', '--member', m.id]),
        );
        processes.push(...agents);
        await Promise.all(agents.map((a) => a.waitForOutput(/: running/, timeoutMs)));
        if (options.agentsOnly) return deployment;
        const dns = ebb('ebb dns', [...config, 'dns']);
        const api = ebb('ebb api', [...config, 'api']);
        processes.push(dns, api);
        await Promise.all([
          dns.waitForOutput(/ebb dns: .* on /, timeoutMs),
          api.waitForOutput(/ebb api: http/, timeoutMs),
        ]);
      }
    } catch (err) {
      await deployment.stop();
      throw err;
    }
    return deployment;
  }

  get apiUrl(): string {
    return this.layout.apiUrl;
  }

  /** The members whose agents run. */
  get members(): BenchMember[] {
    return this.layout.real;
  }

  /** The process that serves DNS (`ebb up` or `ebb dns`). */
  get dnsProcess(): EbbServer {
    return this.mode === 'up' ? this.processes[0]! : this.processes.find((p) => p.name === 'ebb dns')!;
  }

  /** The process that serves the API (`ebb up` or `ebb api`). */
  get apiProcess(): EbbServer {
    return this.mode === 'up' ? this.processes[0]! : this.processes.find((p) => p.name === 'ebb api')!;
  }

  command(member: string, command: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return apiCommand(this.layout.apiUrl, member, command, body);
  }

  async pool(): Promise<PoolStatus> {
    const res = await fetch(`${this.layout.apiUrl}/v1/pool`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as PoolStatus;
  }

  async service(member: string, service: string): Promise<ServiceStatusView> {
    const found = (await this.pool()).members
      .find((m) => m.id === member)
      ?.services.find((s) => s.id === service);
    if (!found) throw new Error(`no ${member}/${service} in the pool status`);
    return found;
  }

  /** Subscribes to GET /v1/events; resolves once the stream's first event (`hello`) has arrived. */
  events(onEvent: (event: EbbEvent, receivedAt: number) => void): Promise<EventStream> {
    return EventStream.open(`${this.layout.apiUrl}/v1/events`, onEvent);
  }

  /** Waits (bounded) until every listed member's `service` accepts, as the API sees it. */
  async waitAccepting(members: string[], service: string, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const pool = await this.pool().catch(() => null);
      const accepting = (id: string) =>
        pool?.members.find((m) => m.id === id)?.services.find((s) => s.id === service)?.accepting === true;
      if (members.every(accepting)) return;
      if (performance.now() > deadline)
        throw new Error(`members ${members.join(', ')} not all accepting ${service} after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** Ends the API and DNS first, then the agents; every process by its PID. */
  async stop(): Promise<void> {
    for (const p of [...this.processes].reverse()) await p.stop();
  }
}

/**
 * `ebb up` on a fresh pool (a scratch dir, removed at cleanup) of `members` real members (default 2) on
 * loopback aliases, each serving `services`.
 */
export async function startEbbPool(options: {
  members?: number;
  services: BenchService[];
  /** Extra Node flags for the `ebb up` process, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  minAccepting?: number;
  /** `agent.workers` of the pool (required: see `PoolLayoutOptions.agentWorkers`). */
  agentWorkers: number;
}): Promise<EbbDeployment> {
  const layout = await writePoolLayout({
    dir: scratchDir('ebb-bench-'),
    real: options.members ?? 2,
    services: options.services,
    ...(options.minAccepting !== undefined ? { minAccepting: options.minAccepting } : {}),
    agentWorkers: options.agentWorkers,
  });
  return EbbDeployment.start(layout, 'up', { nodeArgs: options.nodeArgs ?? [] });
}

/**
 * POST /v1/members/:member/:command with a JSON body. Resolves with the answer and the moment the
 * response arrived (`performance.now()` when the headers were read, before the body is parsed).
 */
export async function apiCommandTimed(
  apiUrl: string,
  member: string,
  command: string,
  body: Record<string, unknown>,
): Promise<{ answer: Record<string, unknown>; returnedAt: number }> {
  const res = await fetch(`${apiUrl}/v1/members/${member}/${command}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const returnedAt = performance.now();
  const answer = (await res.json()) as Record<string, unknown>;
  if (!res.ok) {
    const text = JSON.stringify(answer);
    // Some store errors list every key of a transaction: keep the start and the end.
    const short = text.length > 800 ? `${text.slice(0, 400)} … ${text.slice(-300)}` : text;
    throw new Error(`${command} ${member}: HTTP ${res.status} ${short}`);
  }
  return { answer, returnedAt };
}

export async function apiCommand(
  apiUrl: string,
  member: string,
  command: string,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  return (await apiCommandTimed(apiUrl, member, command, body)).answer;
}
