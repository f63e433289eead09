import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { AccessPolicy } from './access-policy';
import type { Explanation, ExplainQueryDto } from './authz-explain.dto';
import { ServerAccessRepository } from './server-access.repository';

/** Answers "may a caller with these roles and scopes see this server and call this tool, and why?". */
@Injectable()
export class AuthzExplainService {
  constructor(
    private readonly servers: ServerAccessRepository,
    private readonly policy: AccessPolicy,
  ) {}

  async explain(query: ExplainQueryDto): Promise<Explanation> {
    const server = await this.servers.findByRef(query.server);
    if (!server) throw new DomainError('not_found', `no server ${query.server}`);
    const caller = { roles: query.roles ?? [], scopes: query.scopes ?? [], appOnly: query.scopes === undefined };
    const scope = this.policy.checkScopes(caller);
    const see = this.policy.canSeeServer(caller, server);
    const call = query.tool === undefined ? null : this.policy.canUseTool(caller, server, query.tool);
    // The first refusal in the order the gateway applies them decides; else the narrowest allowing rule.
    const decisive = [scope, see, ...(call ? [call] : [])].find((decision) => !decision.allowed) ?? call ?? see;
    return {
      server: { id: server.id, slug: server.slug, name: server.name },
      tool: query.tool ?? null,
      caller,
      allowed: decisive.allowed,
      rule: decisive.rule,
      scope,
      see,
      call,
    };
  }
}
