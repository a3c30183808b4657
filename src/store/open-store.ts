import { EbbError, ExitCode } from '../core/index.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

/** `sqlite:<path>` or `etcd://host:port[,...]` (SPEC §6). */
export async function openStore(spec: string): Promise<Store> {
  if (spec.startsWith('sqlite:')) return SqliteStore.open(spec);
  if (spec.startsWith('etcd://')) {
    // Loaded only when used: the etcd client (gRPC) costs ~0.3 s and ~35 MB at start-up.
    const { EtcdStore } = await import('./etcd-store.ts');
    return EtcdStore.open(spec);
  }
  throw new EbbError(
    'EBB_STORE_UNSUPPORTED',
    `store ${spec}: expected sqlite:<path> or etcd://host:port[,host:port...]`,
    { exitCode: ExitCode.usage },
  );
}
