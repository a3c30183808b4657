import { readFileSync } from 'node:fs';
import { KernelPathError, type KernelPathNeed } from '../core/index.ts';
import { runCommand, type CommandResult } from './kernel-commands.ts';

/** A listener with `mode: kernel` that an agent of this process is about to run. */
export interface KernelListenerSite {
  member: string;
  service: string;
  address: string;
  port: number;
}

/** What the checks read, replaceable for tests on a machine that has everything. */
export interface PreflightProbe {
  platform: NodeJS.Platform;
  /** The effective capability set (`CapEff` of /proc/self/status), or null when unreadable. */
  effectiveCaps(): bigint | null;
  run(command: string, args: string[]): Promise<CommandResult>;
}

/** CAP_NET_ADMIN is capability 12 (linux/capability.h). */
const capNetAdmin = 12n;

export const systemProbe: PreflightProbe = {
  platform: process.platform,
  effectiveCaps() {
    try {
      const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
      return match ? BigInt(`0x${match[1]}`) : null;
    } catch {
      return null;
    }
  },
  run: (command, args) => runCommand(command, args, { timeoutMs: 10_000 }),
};

/**
 * SPEC §12: the kernel data path needs Linux, CAP_NET_ADMIN, `nft` and `ss`. Checked before the agent
 * starts anything; the first listener that cannot run is named with what it misses
 * (`KernelPathError`, exit code 1 like every startup error).
 */
export async function checkKernelPath(
  sites: readonly KernelListenerSite[],
  probe: PreflightProbe = systemProbe,
): Promise<void> {
  const first = sites[0];
  if (!first) return;
  const name = `${first.member}/${first.service} tcp ${first.address}:${first.port} (mode kernel)`;
  const refuse = (missing: KernelPathNeed, why: string, cause?: unknown): never => {
    throw new KernelPathError(`${name}: ${why}`, missing, name, cause);
  };
  if (probe.platform !== 'linux') {
    refuse('linux', `needs Linux (nftables and sock_diag); this is ${probe.platform}`);
  }
  const caps = probe.effectiveCaps();
  if (caps !== null && (caps & (1n << capNetAdmin)) === 0n) {
    refuse(
      'CAP_NET_ADMIN',
      'needs CAP_NET_ADMIN to write nftables rules and destroy sockets; run the agent as root or ' +
        'grant it (systemd: AmbientCapabilities=CAP_NET_ADMIN)',
    );
  }
  const nft = await probe.run('nft', ['list', 'tables']).catch((err: unknown) => {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return refuse(
      'nft',
      missing
        ? 'needs nft (Debian: apt-get install nftables), not found on PATH'
        : `cannot run nft: ${(err as Error).message}`,
      err,
    );
  });
  if (nft.code !== 0) {
    if (/Operation not permitted|Permission denied/.test(nft.stderr)) {
      refuse('CAP_NET_ADMIN', `needs CAP_NET_ADMIN: nft list tables: ${nft.stderr.trim().slice(0, 200)}`);
    }
    refuse('nft', `nft does not work here: ${nft.stderr.trim().slice(0, 200) || `exit ${nft.code}`}`);
  }
  const ss = await probe
    .run('ss', ['-V'])
    .catch((err: unknown) =>
      refuse('ss', 'needs ss (Debian: apt-get install iproute2), not found on PATH', err),
    );
  if (ss.code !== 0) refuse('ss', `ss does not work here: exit ${ss.code}`);
}
