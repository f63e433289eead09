/**
 * The roles × servers × tools matrix both the AccessPolicy unit test and the
 * `/api/v1/authz/explain` end-to-end test check.
 */

export const ROLES = {
  none: [],
  user: ['Gateway.User'],
  reader: ['Gateway.Reader'],
  admin: ['Gateway.Admin'],
  other: ['Some.Other.Role'],
} as const satisfies Record<string, readonly string[]>;
export type RoleSet = keyof typeof ROLES;

export const SERVERS = {
  /** Two roles, no tool rules. */
  open: { allowedRoles: ['Gateway.User', 'Gateway.Reader'], toolRules: {} },
  /** Reads only, and never the secrets: deny wins over allow. */
  readonly: {
    allowedRoles: ['Gateway.Reader', 'Gateway.User'],
    toolRules: { allow: ['get_*', 'list_*'], deny: ['get_secret*'] },
  },
  /** No allowedRoles: admins only (deny by default). */
  adminOnly: { allowedRoles: [], toolRules: {} },
  /** Visible to users, every tool denied. */
  denyAll: { allowedRoles: ['Gateway.User'], toolRules: { deny: ['*'] } },
  /** Stored rules that are not valid: every tool denied (fail closed). */
  broken: { allowedRoles: ['Gateway.User'], toolRules: { allow: 'get_*' } },
} as const;
export type ServerKey = keyof typeof SERVERS;

export const TOOLS = ['get_weather', 'get_secret_key', 'list_items', 'delete_all'] as const;

/** Per server and role: `Y`/`-` for "sees the server", a space, then `Y`/`-` per tool of TOOLS, in order. */
export const EXPECTED: Record<ServerKey, Record<RoleSet, string>> = {
  open: { none: '- ----', user: 'Y YYYY', reader: 'Y YYYY', admin: 'Y YYYY', other: '- ----' },
  readonly: { none: '- ----', user: 'Y Y-Y-', reader: 'Y Y-Y-', admin: 'Y YYYY', other: '- ----' },
  adminOnly: { none: '- ----', user: '- ----', reader: '- ----', admin: 'Y YYYY', other: '- ----' },
  denyAll: { none: '- ----', user: 'Y ----', reader: '- ----', admin: 'Y YYYY', other: '- ----' },
  broken: { none: '- ----', user: 'Y ----', reader: '- ----', admin: 'Y YYYY', other: '- ----' },
};

/** Every cell of the matrix: [role set, server, tool, sees the server, may call the tool]. */
export function matrixCells(): [RoleSet, ServerKey, string, boolean, boolean][] {
  const cells: [RoleSet, ServerKey, string, boolean, boolean][] = [];
  for (const server of Object.keys(SERVERS) as ServerKey[]) {
    for (const role of Object.keys(ROLES) as RoleSet[]) {
      const row = EXPECTED[server][role];
      TOOLS.forEach((tool, index) => cells.push([role, server, tool, row[0] === 'Y', row[2 + index] === 'Y']));
    }
  }
  return cells;
}
