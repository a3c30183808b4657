export { PoolResolver, type Endpoint, type PoolResolverOptions } from './pool-resolver.ts';
export {
  connectToFirstAccepting,
  NoMemberAcceptedError,
  RetryReason,
  type ConnectAttempt,
  type ConnectOptions,
  type ConnectResult,
} from './pool-connector.ts';
export {
  runLoad,
  NotAcceptedError,
  type LoadOptions,
  type LoadStats,
  type SessionOutcome,
  type SessionRunner,
} from './load-generator.ts';
export { tcpSession } from './tcp-echo-session.ts';
export { SipCaller } from './sip-caller.ts';
