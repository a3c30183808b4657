/** SPEC §8: viewer reads; operator pauses, resumes, drains; admin also starts, stops, sets startup, forces. */
export const Role = { viewer: 'viewer', operator: 'operator', admin: 'admin' } as const;
export type Role = (typeof Role)[keyof typeof Role];

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function hasRole(actual: Role, needed: Role): boolean {
  return rank[actual] >= rank[needed];
}

/** The role a command needs; `--force` past the capacity guard always needs admin. */
export function roleFor(action: string, force: boolean): Role {
  if (force) return Role.admin;
  if (action === 'pause' || action === 'resume' || action === 'drain') return Role.operator;
  return Role.admin;
}
