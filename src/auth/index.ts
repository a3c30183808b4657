export { Role, hasRole, roleFor } from './roles.ts';
export { TokenTable, localPrincipal, type Principal } from './token-table.ts';
