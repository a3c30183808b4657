export {
  PoolState,
  type PoolChange,
  type PoolStatus,
  type MemberStatus,
  type ServiceStatusView,
} from './pool-state.ts';
export {
  Controller,
  Action,
  AuditAction,
  type CommandRequest,
  type CommandResult,
  type ApplyFailure,
  type AuditRecord,
} from './controller.ts';
export { checkCapacity } from './capacity-guard.ts';
