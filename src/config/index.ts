export { loadConfigFile, parseConfig, validateConfig, formatPath } from './load-config.ts';
export { checkListenerFiles } from './listener-files.ts';
export { configWarnings } from './config-hints.ts';
export { configSchema } from './schema.ts';
export { builtinUpstreams, splitHostPort } from './fields.ts';
export { isEmbeddedListener, listenerProtocols, tcpModes } from './listener-schema.ts';
export type { PoolConfig, MemberConfig, ServiceConfig, ConfigInput } from './schema.ts';
export type {
  ListenerConfig,
  ListenerProtocol,
  TcpListenerConfig,
  TcpKernelListenerConfig,
  TcpMode,
  SipListenerConfig,
  SipSettings,
  HttpListenerConfig,
  EmbeddedListenerConfig,
  ProxyListenerConfig,
  TlsFilesConfig,
} from './listener-schema.ts';
export type { AddressTarget, BuiltinTarget, BuiltinUpstream, UpstreamTarget } from './fields.ts';
