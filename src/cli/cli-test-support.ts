import type { MemberStatus } from '../control/index.ts';

export type ServiceView = MemberStatus['services'][number];

/** A service's status as the API reports it: running, accepting, nothing counted; `fields` override. */
export function serviceView(id: string, fields: Partial<ServiceView> = {}): ServiceView {
  return {
    id,
    name: id,
    components: [],
    state: 'running',
    startup: 'automatic',
    intent: 'running',
    accepting: true,
    minAccepting: 1,
    sessions: 0,
    sessionsByKind: {},
    idleConnections: 0,
    flows: 0,
    drained: false,
    forced: 0,
    accepted: 0,
    upstreamFailures: 0,
    refused: 0,
    drainStartedAt: null,
    drainedAt: null,
    deadlineAt: null,
    reason: '',
    intentBy: 'config',
    intentAt: null,
    pending: false,
    error: null,
    applyError: null,
    ...fields,
  };
}
