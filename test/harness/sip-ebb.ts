import assert from 'node:assert/strict';
import type { PoolStatus, ServiceStatusView } from '../../src/control/index.ts';
import { runEbb, type EbbRun } from './ebb-process.ts';

/** The `ebb` CLI bound to one config file, with status helpers for the SIP tests. */
export class EbbCli {
  readonly config: string;

  constructor(config: string) {
    this.config = config;
  }

  run(...args: string[]): Promise<EbbRun> {
    return runEbb(['--config', this.config, ...args]);
  }

  async status(): Promise<PoolStatus> {
    const r = await this.run('status', '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as PoolStatus;
  }

  async service(member: string, service: string): Promise<ServiceStatusView> {
    const s = await this.status();
    const found = s.members.find((m) => m.id === member)?.services.find((x) => x.id === service);
    assert.ok(found, `${member}/${service} is not in the status`);
    return found;
  }

  /** Polls `ebb status --json` until `check` holds for the service; fails with the last status seen. */
  async waitFor(
    member: string,
    service: string,
    check: (s: ServiceStatusView) => boolean,
    what: string,
    timeoutMs = 15_000,
  ): Promise<ServiceStatusView> {
    const deadline = Date.now() + timeoutMs;
    let last: ServiceStatusView | undefined;
    while (Date.now() < deadline) {
      last = await this.service(member, service);
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${member}/${service}: ${what} not reached; last ${JSON.stringify(last)}`);
  }
}
