export { createApiApp, type ApiDeps, type ApiOptions } from './api-app.ts';
export {
  EventsStream,
  StreamEventName,
  type EventsStreamOptions,
  type SessionsUpdate,
} from './events-stream.ts';
export { PoolMetrics } from './pool-metrics.ts';
export { ConsoleAssets, defaultConsoleDir } from './console-assets.ts';
export { ApiServer } from './api-server.ts';
export {
  RequestGuard,
  BadHostError,
  ForeignOriginError,
  NotJsonError,
  declaresJson,
  isLoopback,
} from './request-guard.ts';
export { openApiDocument } from './openapi.ts';
