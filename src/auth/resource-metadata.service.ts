import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { AccessPolicy } from './access-policy';
import { bearerTokenOf } from './bearer-challenge';
import type { Principal } from './principal';
import { ProtectedResource, type ProtectedResourceDocument } from './protected-resource';
import { ServerAccessRepository } from './server-access.repository';
import { TokenVerifier } from './token-verifier';

/** Serves the RFC 9728 documents: root, aggregate endpoint and one per registered server. */
@Injectable()
export class ResourceMetadataService {
  constructor(
    private readonly resource: ProtectedResource,
    private readonly servers: ServerAccessRepository,
    private readonly verifier: TokenVerifier,
    private readonly policy: AccessPolicy,
  ) {}

  /**
   * The document for the part of the path after the well-known prefix. A
   * server's document exists while the server does (and is not disabled); a
   * caller presenting a valid token is told 404 for a server it may not see.
   */
  async documentFor(rest: string, authorization: string | undefined): Promise<ProtectedResourceDocument> {
    const unavailable = this.verifier.unavailableReason;
    if (unavailable) throw new DomainError('service_unavailable', unavailable);
    const target = this.resource.resourceOfMetadataPath(rest);
    if (!target) throw new DomainError('not_found', 'no protected resource at this path');
    if (!target.slug) return this.resource.document();
    const server = await this.servers.findByRef(target.slug);
    if (!server || server.status === 'disabled') throw new DomainError('not_found', 'no such MCP server');
    const principal = await this.principalOf(authorization);
    if (principal && !this.policy.canSeeServer(principal, server).allowed) {
      throw new DomainError('not_found', 'no such MCP server');
    }
    return this.resource.document(server.slug);
  }

  /** Metadata is public: a missing or invalid token just means an anonymous reader. */
  private async principalOf(authorization: string | undefined): Promise<Principal | undefined> {
    const token = authorization ? bearerTokenOf(authorization) : undefined;
    if (!token) return undefined;
    try {
      return (await this.verifier.verify(token)).principal;
    } catch {
      return undefined;
    }
  }
}
