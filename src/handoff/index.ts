export { HandoffServer, type HandingOver, type HandoffServerEvents } from './handoff-server.ts';
export { handoffSocketPath } from './handoff-socket-path.ts';
export { HandoffError, Predecessor } from './predecessor.ts';
export { PredecessorListener } from './predecessor-listener.ts';
export { HandoffProtocolError, maxLineBytes } from './line-channel.ts';
export type { NoteMessage } from './handoff-messages.ts';
export { PredecessorGroup } from './predecessor-group.ts';
