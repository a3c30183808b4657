export { PoolResolver, type Endpoint, type PoolResolverOptions } from './pool-resolver.ts';
export {
  connectToFirstAccepting,
  NoMemberAcceptedError,
  RetryReason,
  type ConnectAttempt,
  type ConnectOptions,
  type ConnectResult,
} from './pool-connector.ts';
export { runLoad, type LoadOptions, type LoadStats } from './load-generator.ts';
