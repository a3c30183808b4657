import assert from 'node:assert/strict';
import { loadConfigFile } from '../../src/config/index.ts';
import type { PoolStatus, ServiceStatusView } from '../../src/control/index.ts';
import { runEbb, type EbbRun } from './ebb-process.ts';

/**
 * The `ebb` CLI bound to one config file, with status helpers for the SIP tests. Commands go through the
 * CLI (that is what the tests check); status is read from the API directly: a CLI process per poll costs
 * seconds on a loaded machine, and the SIP tests must look while their held calls are still up.
 */
export class EbbCli {
  readonly config: string;
  private readonly api: string;

  constructor(config: string) {
    this.config = config;
    this.api = `http://${loadConfigFile(config).api.listen}`;
  }

  run(...args: string[]): Promise<EbbRun> {
    return runEbb(['--config', this.config, ...args]);
  }

  /** `GET /v1/pool`: what `ebb status --json` prints. */
  async status(): Promise<PoolStatus> {
    const res = await fetch(`${this.api}/v1/pool`);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as PoolStatus;
  }

  async service(member: string, service: string): Promise<ServiceStatusView> {
    const s = await this.status();
    const found = s.members.find((m) => m.id === member)?.services.find((x) => x.id === service);
    assert.ok(found, `${member}/${service} is not in the status`);
    return found;
  }

  /** Polls the pool status until `check` holds for the service; fails with the last status seen. */
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
