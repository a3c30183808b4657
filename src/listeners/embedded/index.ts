export {
  EmbeddedListener,
  type AttachableServer,
  type EmbeddedListenerOptions,
  type WebSocketServerLike,
} from './embedded-listener.ts';
export { EmbeddedSessionKind } from './server-attachment.ts';
export type { WebSocketLike } from './http1-attachment.ts';
