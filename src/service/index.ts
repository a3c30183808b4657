export { MemberAgent, isEmbeddedService, type MemberAgentOptions } from './member-agent.ts';
export { ServiceRuntime } from './service-runtime.ts';
export { bootIntent } from './boot-intent.ts';
export { LocalIntents } from './local-intents.ts';
export { MemberHeldError } from './lease-holder.ts';
export { AgentCheckServer, agentCheckWord } from './agent-check-server.ts';
