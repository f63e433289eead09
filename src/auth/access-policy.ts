import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { type ToolRules, toolRulesSchema } from '../registry/server.schema';
import type { Principal } from './principal';

/** A decision and the rule that made it, for answers, logs and the audit trail. */
export interface AccessDecision {
  allowed: boolean;
  /**
   * `admin-role:<role>`, `server-role:<role>`, `default-role:<role>` (allowed);
   * `no-allowed-roles`, `no-matching-role` (server hidden); `tool-allow:<glob>` (allowed);
   * `tool-deny:<glob>`, `tool-not-in-allow-list`, `tool-rules-invalid` (tool refused);
   * `scope-missing:<scope>` (a delegated caller without a required scope).
   */
  rule: string;
}

/** What the policy needs of a server: a `servers` row, a registry record or a test double. */
export interface PolicyServer {
  allowedRoles?: readonly string[] | null;
  /** `{ allow?: string[], deny?: string[] }` as stored (JSON); anything else denies every tool. */
  toolRules?: unknown;
}

/** What the policy needs of a caller. */
export type PolicySubject = Pick<Principal, 'roles'>;

/**
 * Who may see which server and call which tool. Pure: the same inputs give the
 * same decision. Deny by default: a server without `allowedRoles` is for the
 * admin role (and AUTH_DEFAULT_ROLES) only; tool rules narrow what the roles
 * allow, deny globs winning over allow globs; the admin role sees and calls everything.
 */
@Injectable()
export class AccessPolicy {
  private readonly adminRole: string;
  private readonly defaultRoles: readonly string[];
  private readonly requiredScopes: readonly string[];
  private readonly globs = new Map<string, RegExp>();

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.adminRole = config.auth.adminRole;
    this.defaultRoles = config.auth.defaultRoles;
    this.requiredScopes = config.auth.requiredScopes.map(shortScopeName);
  }

  canSeeServer(subject: PolicySubject, server: PolicyServer): AccessDecision {
    if (subject.roles.includes(this.adminRole)) return allow(`admin-role:${this.adminRole}`);
    const allowed = server.allowedRoles ?? [];
    if (allowed.length === 0) {
      const role = this.defaultRoles.find((candidate) => subject.roles.includes(candidate));
      return role ? allow(`default-role:${role}`) : deny('no-allowed-roles');
    }
    const role = allowed.find((candidate) => subject.roles.includes(candidate));
    return role ? allow(`server-role:${role}`) : deny('no-matching-role');
  }

  canUseTool(subject: PolicySubject, server: PolicyServer, toolName: string): AccessDecision {
    const seen = this.canSeeServer(subject, server);
    if (!seen.allowed || subject.roles.includes(this.adminRole)) return seen;
    const rules = parseToolRules(server.toolRules);
    if (!rules) return deny('tool-rules-invalid');
    return this.applyToolRules(rules, toolName) ?? seen;
  }

  /** The servers among `servers` the subject may see, in their order. */
  visibleServers<S extends PolicyServer>(subject: PolicySubject, servers: readonly S[]): S[] {
    return servers.filter((server) => this.canSeeServer(subject, server).allowed);
  }

  /**
   * The tools of one server the subject may call, in their order; `nameOf` gives
   * the upstream's own tool name (tool rules are written against it).
   */
  usableTools<T>(
    subject: PolicySubject,
    server: PolicyServer,
    tools: readonly T[],
    nameOf: (tool: T) => string = (tool) => (tool as { name: string }).name,
  ): T[] {
    if (!this.canSeeServer(subject, server).allowed) return [];
    if (subject.roles.includes(this.adminRole)) return [...tools];
    const rules = parseToolRules(server.toolRules);
    if (!rules) return [];
    return tools.filter((tool) => this.applyToolRules(rules, nameOf(tool))?.allowed ?? true);
  }

  /** The required scopes a delegated caller lacks (short names); app-only callers are decided by roles alone. */
  missingScopes(subject: Pick<Principal, 'appOnly' | 'scopes'>): string[] {
    if (subject.appOnly) return [];
    return this.requiredScopes.filter((scope) => !subject.scopes.includes(scope));
  }

  /** The scope decision of a caller, in the same shape as the others. */
  checkScopes(subject: Pick<Principal, 'appOnly' | 'scopes'>): AccessDecision {
    const missing = this.missingScopes(subject)[0];
    return missing ? deny(`scope-missing:${missing}`) : allow(subject.appOnly ? 'app-only' : 'scopes-present');
  }

  /** The decision of the tool rules alone, or undefined when they say nothing (no rules). */
  private applyToolRules(rules: ToolRules, toolName: string): AccessDecision | undefined {
    const denied = rules.deny?.find((glob) => this.match(glob, toolName));
    if (denied !== undefined) return deny(`tool-deny:${denied}`);
    if (!rules.allow?.length) return undefined;
    const allowed = rules.allow.find((glob) => this.match(glob, toolName));
    return allowed !== undefined ? allow(`tool-allow:${allowed}`) : deny('tool-not-in-allow-list');
  }

  private match(glob: string, name: string): boolean {
    let pattern = this.globs.get(glob);
    if (!pattern) {
      pattern = globToRegExp(glob);
      if (this.globs.size > 10_000) this.globs.clear();
      this.globs.set(glob, pattern);
    }
    return pattern.test(name);
  }
}

/** `*` any run of characters, `?` exactly one; everything else literal; the whole name must match. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 's');
}

/**
 * Tool rules already checked, by the stored object: a server's record (and its rules) is kept for as long as it
 * does not change, and checking them against the schema again took a few microseconds of every relayed call.
 */
const checkedToolRules = new WeakMap<object, ToolRules | null>();

/** Stored tool rules, or undefined when they are not what the schema allows (fail closed). */
export function parseToolRules(value: unknown): ToolRules | undefined {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') return checkToolRules(value) ?? undefined;
  let rules = checkedToolRules.get(value);
  if (rules === undefined) {
    rules = checkToolRules(value);
    checkedToolRules.set(value, rules);
  }
  return rules ?? undefined;
}

/** The rules as the schema reads them (a copy, frozen: it is shared), or null when they are not valid. */
function checkToolRules(value: unknown): ToolRules | null {
  const parsed = toolRulesSchema.safeParse(value);
  if (!parsed.success) return null;
  Object.freeze(parsed.data.allow);
  Object.freeze(parsed.data.deny);
  return Object.freeze(parsed.data);
}

/** `api://x/access_as_user` → `access_as_user`: what an Entra `scp` claim holds. */
export function shortScopeName(scope: string): string {
  return scope.slice(scope.lastIndexOf('/') + 1);
}

function allow(rule: string): AccessDecision {
  return { allowed: true, rule };
}

function deny(rule: string): AccessDecision {
  return { allowed: false, rule };
}
