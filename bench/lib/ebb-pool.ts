/**
 * An Ebb pool for a benchmark: a temp config, `ebb up CONFIG` as a child process (as a user runs it and as
 * the test harness does), and small clients for its HTTP API and its server-sent events.
 */
import { request, type IncomingMessage } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcess, freePort, nodeBin, nodeFlags, root, scratchDir } from './processes.ts';

export interface BenchService {
  id: string;
  /** `builtin:echo` or `host:port`. */
  upstream: string;
}

export interface EbbPoolOptions {
  members?: number;
  services: BenchService[];
  /** Extra Node flags for the `ebb up` process, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  minAccepting?: number;
}

export interface BenchMember {
  id: string;
  address: string;
  /** Service id → port. */
  ports: Record<string, number>;
}

export interface EbbEvent {
  code: string;
  member: string;
  service?: string;
  at: number;
  data?: Record<string, unknown>;
}

/** A running `ebb up` on a pool of members on loopback aliases 127.0.<net>.1, .2, … */
export class EbbPool {
  readonly proc: BenchProcess;
  readonly apiUrl: string;
  readonly members: BenchMember[];
  readonly configPath: string;
  readonly dir: string;

  private constructor(
    proc: BenchProcess,
    apiUrl: string,
    members: BenchMember[],
    configPath: string,
    dir: string,
  ) {
    this.proc = proc;
    this.apiUrl = apiUrl;
    this.members = members;
    this.configPath = configPath;
    this.dir = dir;
  }

  static async start(options: EbbPoolOptions): Promise<EbbPool> {
    const dir = scratchDir('ebb-bench-');
    const net = 100 + Math.floor(Math.random() * 100);
    const members: BenchMember[] = [];
    for (let i = 0; i < (options.members ?? 2); i++) {
      const address = `127.0.${net}.${i + 1}`;
      const ports: Record<string, number> = {};
      for (const s of options.services) ports[s.id] = await freePort(address);
      members.push({ id: `m${i + 1}`, address, ports });
    }
    const apiPort = await freePort();
    const dnsPort = await freePort();
    const yaml = [
      `pool: { name: bench${net}, fqdn: bench${net}.ebb.test, minAccepting: ${options.minAccepting ?? 1} }`,
      `store: sqlite:${join(dir, 'state.db')}`,
      `dns: { listen: 127.0.0.1:${dnsPort} }`,
      `api: { listen: 127.0.0.1:${apiPort} }`,
      `agent: { leaseTtl: 5s, localState: ${join(dir, 'local')} }`,
      'members:',
      ...members.flatMap((m) => [
        `  - id: ${m.id}`,
        `    address: ${m.address}`,
        '    services:',
        ...options.services.flatMap((s) => [
          `      - id: ${s.id}`,
          `        listeners: [{ protocol: tcp, port: ${m.ports[s.id]}, upstream: ${s.upstream} }]`,
        ]),
      ]),
      '',
    ].join('\n');
    const configPath = join(dir, 'pool.yaml');
    writeFileSync(configPath, yaml);
    const proc = new BenchProcess(
      'ebb up',
      nodeBin,
      [...nodeFlags, ...(options.nodeArgs ?? []), join(root, 'bin/ebb.js'), 'up', configPath],
      {},
    );
    await proc.waitForOutput(/is up/, 20_000);
    return new EbbPool(proc, `http://127.0.0.1:${apiPort}`, members, configPath, dir);
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** POST /v1/members/:member/:command with a JSON body; resolves with the parsed answer. */
  async command(
    member: string,
    command: string,
    body: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.apiUrl}/v1/members/${member}/${command}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${command} ${member}: HTTP ${res.status} ${JSON.stringify(answer)}`);
    return answer;
  }

  async pool(): Promise<PoolStatusLite> {
    const res = await fetch(`${this.apiUrl}/v1/pool`);
    return (await res.json()) as PoolStatusLite;
  }

  async service(member: string, service: string): Promise<ServiceStatusLite> {
    const found = (await this.pool()).members
      .find((m) => m.id === member)
      ?.services.find((s) => s.id === service);
    if (!found) throw new Error(`no ${member}/${service} in the pool status`);
    return found;
  }

  /** Subscribes to GET /v1/events; resolves once the stream's first event (`hello`) has arrived. */
  events(onEvent: (event: EbbEvent, receivedAt: number) => void): Promise<EventStream> {
    return EventStream.open(`${this.apiUrl}/v1/events`, onEvent);
  }

  stop(): Promise<void> {
    return this.proc.stop(15_000);
  }
}

export interface ServiceStatusLite {
  id: string;
  state: string;
  accepting: boolean;
  sessions: number;
  drained: boolean;
  forced: number;
  accepted: number;
}
export interface PoolStatusLite {
  members: Array<{ id: string; readyForOffline: boolean; services: ServiceStatusLite[] }>;
}

/** A minimal server-sent-events reader (event + data lines, blank line ends an event). */
export class EventStream {
  private readonly response: IncomingMessage;

  private constructor(response: IncomingMessage) {
    this.response = response;
  }

  static open(url: string, onEvent: (event: EbbEvent, receivedAt: number) => void): Promise<EventStream> {
    return new Promise((resolveStream, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        const stream = new EventStream(res);
        let buffer = '';
        let hello = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const receivedAt = performance.now();
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (name === 'hello') {
              if (!hello) resolveStream(stream);
              hello = true;
              continue;
            }
            try {
              onEvent(JSON.parse(data.join('\n')) as EbbEvent, receivedAt);
            } catch {
              // Not JSON: not an Ebb event; ignore.
            }
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.response.destroy();
  }
}
