/**
 * Ebb processes for a `PoolLayout`: either one `ebb up` (agents, DNS and API in one process) or separate
 * processes as on several machines — `ebb agent --member <id>` per real member, `ebb dns`, `ebb api` —
 * sharing the layout's store. Each is a `BenchProcess`, ended by its PID.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolStatusLite } from './ebb-pool.ts';
import type { PoolLayout } from './pool-layout.ts';
import { BenchProcess, nodeBin, nodeFlags, root } from './processes.ts';

export type DeploymentMode = 'up' | 'split';

export class EbbDeployment {
  readonly layout: PoolLayout;
  readonly mode: DeploymentMode;
  readonly processes: BenchProcess[];

  private constructor(layout: PoolLayout, mode: DeploymentMode, processes: BenchProcess[]) {
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
      new BenchProcess(
        name,
        nodeBin,
        [...nodeFlags, ...(options.nodeArgs ?? []), join(root, 'bin/ebb.js'), ...args],
        {},
      );
    const processes: BenchProcess[] = [];
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

  /** The process that serves DNS (`ebb up` or `ebb dns`). */
  get dnsProcess(): BenchProcess {
    return this.mode === 'up' ? this.processes[0]! : this.processes.find((p) => p.name === 'ebb dns')!;
  }

  /** The process that serves the API (`ebb up` or `ebb api`). */
  get apiProcess(): BenchProcess {
    return this.mode === 'up' ? this.processes[0]! : this.processes.find((p) => p.name === 'ebb api')!;
  }

  command(member: string, command: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return apiCommand(this.layout.apiUrl, member, command, body);
  }

  async pool(): Promise<PoolStatusLite> {
    const res = await fetch(`${this.layout.apiUrl}/v1/pool`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as PoolStatusLite;
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
    for (const p of [...this.processes].reverse()) await p.stop(15_000);
  }
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
