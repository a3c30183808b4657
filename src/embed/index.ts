/**
 * Ebb's library (`import { embed } from 'ebb'`, SPEC §12): a Node server embeds the agent of its own
 * service and drains itself. Everything the package exports for applications is named here.
 */
export { embed, EmbeddedAgent, EmbeddedAgentEvent, type EmbedOptions } from './embedded-agent.ts';
export type {
  AttachableServer,
  ListenerStats,
  WebSocketLike,
  WebSocketServerLike,
} from '../listeners/index.ts';
export { EbbError, ConfigError, ServiceState, type EbbEvent, type ServiceStatus } from '../core/index.ts';
