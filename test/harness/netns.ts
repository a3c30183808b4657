import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ManagedProcess, type ProcessOptions } from './managed-process.ts';

/**
 * Several "machines" on one box for multi-host tests: one network namespace per host, each with a veth
 * into a shared bridge that lives in its own namespace, on a private 10.x subnet. Nothing touches the
 * root namespace's network. `destroy()` removes every namespace (and so every veth and the bridge).
 */
export class NetnsLab {
  readonly id = randomBytes(3).toString('hex');
  readonly subnet = `10.${77 + (parseInt(this.id.slice(0, 2), 16) % 100)}.${parseInt(this.id.slice(2, 4), 16) % 250}`;
  readonly hosts: Array<{ name: string; ns: string; address: string }> = [];
  private readonly hub = `ebb-${this.id}-hub`;
  private readonly children: ChildProcess[] = [];

  /** Creates `count` hosts, h1…hN, at <subnet>.1 … .N. */
  static create(count: number): NetnsLab {
    const lab = new NetnsLab();
    try {
      ip('netns', 'add', lab.hub);
      ip('-n', lab.hub, 'link', 'set', 'lo', 'up');
      ip('-n', lab.hub, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', lab.hub, 'link', 'set', 'br0', 'up');
      for (let i = 1; i <= count; i++) {
        const ns = `ebb-${lab.id}-h${i}`;
        const address = `${lab.subnet}.${i}`;
        ip('netns', 'add', ns);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        // The veth pair is created inside the host namespace, then one end moves to the hub.
        ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`);
        ip('-n', ns, 'link', 'set', `p${i}`, 'netns', lab.hub);
        ip('-n', lab.hub, 'link', 'set', `p${i}`, 'master', 'br0');
        ip('-n', lab.hub, 'link', 'set', `p${i}`, 'up');
        ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        lab.hosts.push({ name: `h${i}`, ns, address });
      }
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  /** Starts a long-running process inside a host's namespace. */
  spawn(host: number, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.hosts[host - 1]!.ns, command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...options,
    });
    this.children.push(child);
    return child;
  }

  /** Starts a long-running process inside a host's namespace (`ip netns exec` execs it: the PID is its own). */
  start(
    host: number,
    name: string,
    command: string,
    args: string[],
    options: ProcessOptions = {},
  ): ManagedProcess {
    const proc = new ManagedProcess(
      name,
      'ip',
      ['netns', 'exec', this.hosts[host - 1]!.ns, command, ...args],
      options,
    );
    this.children.push(proc.child);
    return proc;
  }

  /** Runs a command to completion inside a host's namespace. */
  exec(
    host: number,
    command: string,
    args: string[],
    env?: NodeJS.ProcessEnv,
  ): { code: number; stdout: string; stderr: string } {
    try {
      const stdout = execFileSync('ip', ['netns', 'exec', this.hosts[host - 1]!.ns, command, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
        env: { ...process.env, ...env },
      });
      return { code: 0, stdout, stderr: '' };
    } catch (err) {
      const e = err as { status?: number; stdout?: string; stderr?: string };
      return { code: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  destroy(): void {
    for (const child of this.children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const host of this.hosts) tryIp('netns', 'del', host.ns);
    tryIp('netns', 'del', this.hub);
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}
