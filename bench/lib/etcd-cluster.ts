/**
 * The real 3-member etcd cluster of test/harness/etcd-cluster.ts, for benchmarks, with optional extra etcd
 * flags. The harness starts the binary named by EBB_ETCD_BIN when it is first imported; this module points
 * that at `etcd-wrapper.sh`, which execs the real etcd (the one EBB_ETCD_BIN named before, else
 * /usr/bin/etcd) with the flags in EBB_BENCH_ETCD_ARGS, read when each member is spawned.
 */
import { join } from 'node:path';
import type { EtcdCluster } from '../../test/harness/etcd-cluster.ts';
import { onCleanup, root } from './processes.ts';

export type { EtcdCluster };

let harness: Promise<typeof import('../../test/harness/etcd-cluster.ts')> | null = null;

/** Starts a cluster (ended at cleanup too). `extraArgs` such as `--max-txn-ops=2048` go to every member. */
export async function startEtcdCluster(
  options: { size?: number; extraArgs?: string[] } = {},
): Promise<EtcdCluster> {
  if (!harness) {
    process.env['EBB_BENCH_ETCD_REAL'] ??= process.env['EBB_ETCD_BIN'] ?? '/usr/bin/etcd';
    process.env['EBB_ETCD_BIN'] = join(root, 'bench/lib/etcd-wrapper.sh');
    harness = import('../../test/harness/etcd-cluster.ts');
  }
  const { EtcdCluster: Cluster } = await harness;
  process.env['EBB_BENCH_ETCD_ARGS'] = (options.extraArgs ?? []).join(' ');
  const cluster = await Cluster.start({ size: options.size ?? 3 });
  onCleanup(() => cluster.stop());
  return cluster;
}
