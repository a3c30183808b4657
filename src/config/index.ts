export { loadConfigFile, parseConfig, validateConfig, formatPath } from './load-config.ts';
export { configSchema, splitHostPort } from './schema.ts';
export type { PoolConfig, MemberConfig, ServiceConfig, ListenerConfig, ConfigInput } from './schema.ts';
