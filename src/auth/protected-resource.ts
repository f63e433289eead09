import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { SERVER_SLUG } from '../registry/server.schema';
import { DEV_AUDIENCE } from './dev-signing-key';

export const WELL_KNOWN_PRM = '/.well-known/oauth-protected-resource';

/** RFC 9728 protected resource metadata, as served and as pointed at by every 401. */
export interface ProtectedResourceDocument {
  resource: string;
  authorization_servers?: string[];
  scopes_supported: string[];
  bearer_methods_supported: ['header'];
  resource_name: string;
}

/**
 * The gateway's resources as OAuth sees them: `$PUBLIC_URL$MCP_PREFIX` (the
 * aggregate endpoint) and `$PUBLIC_URL$MCP_PREFIX/{slug}` (one upstream), each
 * with its metadata URL, the Entra authorization server and the scopes to ask for;
 * and `$PUBLIC_URL` itself, whose metadata is the root document clients fall back to.
 */
@Injectable()
export class ProtectedResource {
  private readonly publicUrl: URL;
  /** PUBLIC_URL's path without its trailing slashes: '' at the origin's root, `/base` behind a path-routing proxy. */
  private readonly basePath: string;
  private readonly mcpPrefix: string;
  /** Fully qualified scopes (`api://<client id>/<name>`), as a client must request them from Entra. */
  readonly scopes: string[];
  readonly authorizationServers: string[];

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.publicUrl = new URL(config.publicUrl);
    this.basePath = this.publicUrl.pathname.replace(/\/+$/, '');
    this.mcpPrefix = config.mcpPrefix;
    const { auth } = config;
    const scopeBase = auth.mode === 'dev' ? DEV_AUDIENCE : `api://${auth.clientId ?? '<AZURE_CLIENT_ID>'}`;
    this.scopes = auth.requiredScopes.map((scope) => (scope.includes('/') ? scope : `${scopeBase}/${scope}`));
    // An authorization server is named by its issuer identifier, an https URL under which a client finds the
    // server's metadata and gets its tokens (RFC 9728 §2, RFC 8414 §2). Dev mode has none to name, so its documents
    // carry no `authorization_servers`, although the MCP authorization spec (2025-11-25) asks for at least one: its
    // tokens are printed by `mcp-gateway token`, signed with the key in DATA_DIR, and name the issuer DEV_ISSUER
    // (`urn:mcp-gateway:dev`), a URN no client can fetch metadata from; no endpoint issues them. A dev client is
    // given its token, never sent to get one.
    this.authorizationServers =
      auth.mode === 'entra' && auth.tenantId ? [`${auth.authorityHost}/${auth.tenantId}/v2.0`] : [];
  }

  /** The resource identifier: the aggregate endpoint, or one upstream's. */
  resourceUrl(slug?: string): string {
    return `${this.publicUrl.origin}${this.basePath}${this.mcpPrefix}${slug ? `/${slug}` : ''}`;
  }

  /** Where the metadata of that resource lives: the well-known suffix inserted between host and path (RFC 9728 §3.1). */
  metadataUrl(slug?: string): string {
    return `${this.publicUrl.origin}${WELL_KNOWN_PRM}${this.basePath}${this.mcpPrefix}${slug ? `/${slug}` : ''}`;
  }

  /**
   * Which resource a request path under MCP_PREFIX addresses: the upstream slug
   * when its first segment is slug-shaped, else the aggregate (undefined).
   * Shape only, no lookup: a 401 must not tell whether a server exists.
   */
  slugOfRequestPath(path: string): string | undefined {
    if (!path.startsWith(`${this.mcpPrefix}/`)) return undefined;
    const segment = path.slice(this.mcpPrefix.length + 1).split('/')[0] ?? '';
    return SERVER_SLUG.test(segment) ? segment : undefined;
  }

  /**
   * The document for the part of a metadata path after the well-known prefix, or undefined when it names no
   * resource. Its `resource` is the identifier the well-known suffix was inserted into (RFC 9728 §3.3): PUBLIC_URL
   * for the root, the aggregate endpoint, or one upstream's endpoint for any slug-shaped name (shape only, no lookup).
   *
   * Behind a proxy that serves the gateway under a path (PUBLIC_URL `https://host/base`), the metadata URL puts that
   * path after the well-known prefix (`/.well-known/oauth-protected-resource/base/mcp/up`): outside `/base`, so a
   * proxy routing it to the gateway passes it on as it is, and the gateway serves it so. One that strips `/base`
   * there too is served alike.
   */
  documentAt(rest: string): ProtectedResourceDocument | undefined {
    const base = this.basePath;
    const path = base !== '' && (rest === base || rest.startsWith(`${base}/`)) ? rest.slice(base.length) : rest;
    if (path === '' || path === '/') return this.document(`${this.publicUrl.origin}${base}`, 'mcp-gateway');
    if (path === this.mcpPrefix) return this.document(this.resourceUrl(), 'mcp-gateway');
    if (!path.startsWith(`${this.mcpPrefix}/`)) return undefined;
    const slug = path.slice(this.mcpPrefix.length + 1);
    return SERVER_SLUG.test(slug) ? this.document(this.resourceUrl(slug), `mcp-gateway: ${slug}`) : undefined;
  }

  private document(resource: string, name: string): ProtectedResourceDocument {
    return {
      resource,
      ...(this.authorizationServers.length ? { authorization_servers: this.authorizationServers } : {}),
      scopes_supported: this.scopes,
      bearer_methods_supported: ['header'],
      resource_name: name,
    };
  }
}
