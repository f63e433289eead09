import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { ProtectedResource, type ProtectedResourceDocument } from './protected-resource';
import { TokenVerifier } from './token-verifier';

/** Serves the RFC 9728 documents: root, aggregate endpoint and one per server slug. */
@Injectable()
export class ResourceMetadataService {
  constructor(
    private readonly resource: ProtectedResource,
    private readonly verifier: TokenVerifier,
  ) {}

  /**
   * The document for the part of the path after the well-known prefix. Every slug-shaped path has one, built from
   * the path alone, as `/mcp/{slug}` answers 401 to every slug alike: whether a server exists, or whom it admits,
   * is not told to a reader who has not been authenticated at the endpoint itself. No token is looked at, so
   * reading metadata never costs a signature check or a key fetch.
   */
  documentFor(rest: string): ProtectedResourceDocument {
    const unavailable = this.verifier.unavailableReason;
    if (unavailable) throw new DomainError('service_unavailable', unavailable);
    const document = this.resource.documentAt(rest);
    if (!document) throw new DomainError('not_found', 'no protected resource at this path');
    return document;
  }
}
