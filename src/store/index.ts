export type {
  Store,
  KeyValue,
  WatchEvent,
  WatchOptions,
  Snapshot,
  Compare,
  TxnOp,
  TxnResult,
  Watcher,
  Lease,
} from './store.ts';
export { SqliteStore } from './sqlite-store.ts';
export type { EtcdStore, EtcdStoreOptions } from './etcd-store.ts';
export { PoolKeys } from './pool-keys.ts';
export { openStore } from './open-store.ts';
