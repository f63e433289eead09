/**
 * Shapes of the official MCP Registry read API (v0.1, openapi.yaml of
 * modelcontextprotocol/registry, info.version 2025-12-01) and of server.json
 * (schema 2025-12-11), as far as this gateway fills them.
 */

/** The server.json schema this API answers with (`$schema` of every entry). */
export const SERVER_JSON_SCHEMA_URL = 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json';

/** Key of the registry-managed metadata in `ServerResponse._meta`. */
export const OFFICIAL_META_KEY = 'io.modelcontextprotocol.registry/official';

/** What server.json allows for `description` and `title` (`maxLength`, in code points). */
export const SERVER_JSON_TEXT_MAX = 100;
/** What the official metadata allows for `statusMessage`. */
export const STATUS_MESSAGE_MAX = 500;

/** `limit` of `GET /v0.1/servers`: the official registry's default and maximum. */
export const DEFAULT_PAGE_SIZE = 30;
export const MAX_PAGE_SIZE = 100;

export type OfficialStatus = 'active' | 'deprecated' | 'deleted';

export interface RemoteTransport {
  type: 'streamable-http';
  url: string;
}

/** server.json (`ServerDetail`): only the fields the gateway can fill truthfully. */
export interface ServerJson {
  $schema: string;
  name: string;
  title?: string;
  description: string;
  version: string;
  remotes: RemoteTransport[];
}

export interface OfficialMeta {
  status: OfficialStatus;
  statusMessage?: string;
  publishedAt: string;
  updatedAt: string;
  isLatest: boolean;
}

/**
 * What this gateway adds under `ServerResponse._meta[GATEWAY_META_KEY]`. The
 * spec makes that `_meta` "registry-managed metadata" open to other keys
 * (`additionalProperties: true`), which this is: live data of the gateway, not
 * the publisher's. server.json's own `_meta` is the publisher's, is what
 * mirrors and installs copy verbatim (freezing a health status that changes
 * by the minute), and under the same key carries gateway *settings* for
 * import/export, so it is left alone.
 */
export interface GatewayMeta {
  /** Absent only for a deleted server whose record lacks one. */
  slug?: string;
  /** Where MCP clients connect: the gateway, never the upstream. */
  url?: string;
  /** The prober's view: `unknown`, `healthy`, `degraded` or `unreachable`. */
  health: string;
  toolCount: number;
  /** Roles a caller needs (any one of them) to reach the server through the gateway; empty means any caller. */
  requiredRoles: string[];
}

export interface ServerResponse {
  server: ServerJson;
  _meta: Record<string, OfficialMeta | GatewayMeta>;
}

export interface ServerList {
  servers: ServerResponse[];
  metadata: { nextCursor?: string; count: number };
}

/**
 * An error as these routes answer it: `error` is the field the spec
 * documents; `title`, `status` and `detail` are what the official registry
 * (huma, RFC 9457) sends, so clients of either shape read it.
 */
export interface RegistryErrorBody {
  error: string;
  title: string;
  status: number;
  detail: string;
  errors?: { location: string; message: string }[];
  errorId?: string;
}
