import { loadConfig } from '../config/config';
import { matrixCells, ROLES, SERVERS, TOOLS } from '../../test/support/rbac-matrix';
import { AccessPolicy, globToRegExp, parseToolRules } from './access-policy';

function policyWith(env: Record<string, string> = {}): AccessPolicy {
  return new AccessPolicy(loadConfig(env));
}

describe('AccessPolicy', () => {
  const policy = policyWith();

  describe.each(matrixCells())('%s on server %s, tool %s', (role, serverKey, tool, sees, calls) => {
    const subject = { roles: [...ROLES[role]] };
    const server = SERVERS[serverKey];

    it(`${sees ? 'sees' : 'does not see'} the server and ${calls ? 'may' : 'may not'} call the tool`, () => {
      expect(policy.canSeeServer(subject, server).allowed).toBe(sees);
      expect(policy.canUseTool(subject, server, tool).allowed).toBe(calls);
      expect(policy.visibleServers(subject, [server])).toHaveLength(sees ? 1 : 0);
      expect(policy.usableTools(subject, server, [{ name: tool }])).toHaveLength(calls ? 1 : 0);
    });
  });

  it('filters a tool list to exactly the tools that may be called, in order', () => {
    const tools = TOOLS.map((name) => ({ name, description: `does ${name}` }));
    expect(policy.usableTools({ roles: ['Gateway.Reader'] }, SERVERS.readonly, tools).map((t) => t.name)).toEqual([
      'get_weather',
      'list_items',
    ]);
    expect(policy.usableTools({ roles: [] }, SERVERS.open, tools)).toEqual([]);
    expect(
      policy.usableTools({ roles: ['Gateway.User'] }, SERVERS.open, [{ upstream: 'x' }], (tool) => tool.upstream),
    ).toHaveLength(1);
  });

  it('names the rule that decided', () => {
    const reader = { roles: ['Gateway.Reader'] };
    expect(policy.canSeeServer({ roles: ['Gateway.Admin'] }, SERVERS.adminOnly)).toEqual({
      allowed: true,
      rule: 'admin-role:Gateway.Admin',
    });
    expect(policy.canSeeServer(reader, SERVERS.adminOnly)).toEqual({ allowed: false, rule: 'no-allowed-roles' });
    expect(policy.canSeeServer(reader, SERVERS.denyAll)).toEqual({ allowed: false, rule: 'no-matching-role' });
    expect(policy.canSeeServer(reader, SERVERS.open)).toEqual({ allowed: true, rule: 'server-role:Gateway.Reader' });
    expect(policy.canUseTool(reader, SERVERS.open, 'anything')).toEqual({
      allowed: true,
      rule: 'server-role:Gateway.Reader',
    });
    expect(policy.canUseTool(reader, SERVERS.readonly, 'get_weather')).toEqual({
      allowed: true,
      rule: 'tool-allow:get_*',
    });
    expect(policy.canUseTool(reader, SERVERS.readonly, 'get_secret_key')).toEqual({
      allowed: false,
      rule: 'tool-deny:get_secret*',
    });
    expect(policy.canUseTool(reader, SERVERS.readonly, 'delete_all')).toEqual({
      allowed: false,
      rule: 'tool-not-in-allow-list',
    });
    expect(policy.canUseTool({ roles: ['Gateway.User'] }, SERVERS.broken, 'get_weather')).toEqual({
      allowed: false,
      rule: 'tool-rules-invalid',
    });
    expect(policy.canUseTool(reader, SERVERS.adminOnly, 'get_weather')).toEqual({
      allowed: false,
      rule: 'no-allowed-roles',
    });
  });

  it('treats a row without allowedRoles or toolRules (null) as deny by default', () => {
    expect(policy.canSeeServer({ roles: ['Gateway.User'] }, { allowedRoles: null, toolRules: null }).allowed).toBe(
      false,
    );
  });

  it('takes the admin role and the default roles from configuration', () => {
    const custom = policyWith({ AUTH_ADMIN_ROLE: 'Ops.Root', AUTH_DEFAULT_ROLES: 'Gateway.User, Everyone' });
    expect(custom.canSeeServer({ roles: ['Gateway.Admin'] }, SERVERS.adminOnly).allowed).toBe(false);
    expect(custom.canUseTool({ roles: ['Ops.Root'] }, SERVERS.denyAll, 'x')).toEqual({
      allowed: true,
      rule: 'admin-role:Ops.Root',
    });
    expect(custom.canSeeServer({ roles: ['Everyone'] }, SERVERS.adminOnly)).toEqual({
      allowed: true,
      rule: 'default-role:Everyone',
    });
    // Default roles apply to servers without allowedRoles only.
    expect(custom.canSeeServer({ roles: ['Everyone'] }, SERVERS.open).allowed).toBe(false);
  });

  it('matches role names exactly (Entra role values are case-sensitive)', () => {
    expect(policy.canSeeServer({ roles: ['gateway.admin'] }, SERVERS.adminOnly).allowed).toBe(false);
    expect(policy.canSeeServer({ roles: ['Gateway.User '] }, SERVERS.open).allowed).toBe(false);
  });

  it('requires the configured scopes of delegated callers only', () => {
    expect(policy.missingScopes({ appOnly: false, scopes: [] })).toEqual(['access_as_user']);
    expect(policy.missingScopes({ appOnly: false, scopes: ['access_as_user'] })).toEqual([]);
    expect(policy.missingScopes({ appOnly: true, scopes: [] })).toEqual([]);
    const strict = policyWith({ AUTH_REQUIRED_SCOPES: 'access_as_user, https://gw.contoso.com/Tools.Call' });
    expect(strict.checkScopes({ appOnly: false, scopes: ['access_as_user'] })).toEqual({
      allowed: false,
      rule: 'scope-missing:Tools.Call',
    });
  });
});

describe('parseToolRules', () => {
  it('checks a stored rules object once, and shares the result read-only', () => {
    const stored = { allow: ['get_*'], deny: ['get_secret*'] };
    const first = parseToolRules(stored);
    expect(first).toEqual(stored);
    expect(first).not.toBe(stored);
    expect(parseToolRules(stored)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first?.allow)).toBe(true);
    expect(() => first?.deny?.push('x')).toThrow(TypeError);
    // An equal but different object is checked on its own.
    expect(parseToolRules({ ...stored })).not.toBe(first);
  });

  it('fails closed on anything the schema does not allow, every time', () => {
    const broken = { allow: ['get_*'], extra: true };
    expect(parseToolRules(broken)).toBeUndefined();
    expect(parseToolRules(broken)).toBeUndefined();
    expect(parseToolRules('{"allow":["*"]}')).toBeUndefined();
    expect(parseToolRules(42)).toBeUndefined();
    expect(parseToolRules([])).toBeUndefined();
    expect(parseToolRules(null)).toEqual({});
    expect(parseToolRules(undefined)).toEqual({});
  });
});

describe('globToRegExp', () => {
  it.each([
    ['get_*', 'get_weather', true],
    ['get_*', 'get_', true],
    ['get_*', 'xget_weather', false],
    ['get_?', 'get_a', true],
    ['get_?', 'get_ab', false],
    ['*', '', true],
    ['a.b', 'aXb', false],
    ['a.b', 'a.b', true],
    ['(x)+[y]', '(x)+[y]', true],
    ['tool', 'Tool', false],
    ['*secret*', 'read_secret_value', true],
    ['a*b*c', 'a-b-b-c', true],
  ])('%s matches %s: %s', (glob, name, matches) => {
    expect(globToRegExp(glob).test(name)).toBe(matches);
  });
});
