export { PoolState, type PoolStatus, type MemberStatus, type ServiceStatusView } from './pool-state.ts';
export {
  Controller,
  Action,
  type CommandRequest,
  type CommandResult,
  type AuditRecord,
} from './controller.ts';
export { checkCapacity } from './capacity-guard.ts';
