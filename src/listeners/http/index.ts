export { BuiltinWeb } from './builtin-web.ts';
export { ChatRoom, type ChatEvent } from './chat-room.ts';
export {
  HTTP_DEFAULT_CLOSE_SPREAD_MS,
  HttpListener,
  createHttpListener,
  type HttpListenerOptions,
  type HttpListenerStats,
} from './http-listener.ts';
export { HttpFrontEnd, type HttpFrontEndOptions, type HttpFrontEndStats } from './http-front-end.ts';
export { HttpError, HttpErrorCode, clientError } from './http-errors.ts';
export { defaultHttpLimits, type HttpLimits } from './http-limits.ts';
export { HttpSessionKind } from './http-sessions.ts';
export { WebSocketCloseCode, closeFrame } from './websocket-close-frame.ts';
export { FrameTrackerState, WebSocketFrameTracker } from './websocket-frame-tracker.ts';
