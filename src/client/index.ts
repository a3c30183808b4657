export { PoolResolver, type Endpoint, type PoolResolverOptions } from './pool-resolver.ts';
export { CachedAnswers } from './cached-answers.ts';
export {
  connectToFirstAccepting,
  NoMemberAcceptedError,
  RetryReason,
  type ConnectAttempt,
  type ConnectOptions,
  type ConnectResult,
} from './pool-connector.ts';
export {
  HttpConnector,
  HttpRequestError,
  type HttpAnswer,
  type HttpConnectorOptions,
  type HttpRequest,
} from './http-connector.ts';
export {
  openWebSocketFirstAccepting,
  tryAgainLater,
  type WebSocketConnectOptions,
  type WebSocketResult,
} from './websocket-connector.ts';
export {
  runLoad,
  NotAcceptedError,
  type LoadOptions,
  type LoadStats,
  type SessionContext,
  type SessionRunner,
} from './load-generator.ts';
export { tcpSession } from './tcp-echo-session.ts';
export { SipCaller } from './sip-caller.ts';
export { httpSession, HttpSessionKind, type HttpLoadOptions } from './http-load-sessions.ts';
