/**
 * The real etcd cluster of test/harness/etcd-cluster.ts for benchmarks (ended at cleanup too), with
 * optional extra etcd flags such as `--max-txn-ops=2048` for every member.
 */
import { EtcdCluster } from '../../test/harness/etcd-cluster.ts';
import { track } from './processes.ts';

export type { EtcdCluster };

export async function startEtcdCluster(
  options: { size?: number; extraArgs?: string[] } = {},
): Promise<EtcdCluster> {
  return track(await EtcdCluster.start({ size: options.size ?? 3, extraArgs: options.extraArgs ?? [] }));
}
