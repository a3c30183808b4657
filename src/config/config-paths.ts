import { isAbsolute, resolve } from 'node:path';
import type { PoolConfig } from './schema.ts';

/**
 * Relative paths in a config file are relative to the file's directory, not to wherever the command was
 * started (operator audit #25): `ebb up pool.yaml` from `/` and from the file's own directory must open
 * the same store, or a pool "forgets" its durable pauses. Covers `store: sqlite:PATH`,
 * `agent.localState` and listeners' `tls.cert` / `tls.key`.
 */
export function resolveConfigPaths(config: PoolConfig, baseDir: string): PoolConfig {
  const from = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const store =
    config.store.startsWith('sqlite:') && config.store !== 'sqlite::memory:'
      ? `sqlite:${from(config.store.slice('sqlite:'.length))}`
      : config.store;
  return {
    ...config,
    store,
    agent: { ...config.agent, localState: from(config.agent.localState) },
    members: config.members.map((member) => ({
      ...member,
      services: member.services.map((service) => ({
        ...service,
        listeners: service.listeners.map((listener) =>
          'tls' in listener && listener.tls
            ? {
                ...listener,
                tls: { ...listener.tls, cert: from(listener.tls.cert), key: from(listener.tls.key) },
              }
            : listener,
        ),
      })),
    })),
  };
}
