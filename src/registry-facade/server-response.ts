import { GATEWAY_META_KEY } from '../registry/server.schema';
import {
  type GatewayMeta,
  OFFICIAL_META_KEY,
  type OfficialMeta,
  SERVER_JSON_SCHEMA_URL,
  SERVER_JSON_TEXT_MAX,
  type ServerJson,
  type ServerResponse,
  STATUS_MESSAGE_MAX,
} from './official-registry.types';
import type { FacadeVersionRow } from './registry-facade.repository';

/** Where clients reach the gateway's MCP endpoints. */
export interface GatewayAddress {
  /** `PUBLIC_URL`, without a trailing slash. */
  publicUrl: string;
  /** `MCP_PREFIX`, starting with a slash. */
  mcpPrefix: string;
}

/**
 * One version as a registry client sees it. The server.json holds published
 * fields only (the repository never reads the upstream's URL, auth or
 * timeouts), and its only remote is the gateway's endpoint for the server.
 */
export function toServerResponse(row: FacadeVersionRow, gateway: GatewayAddress): ServerResponse {
  const url = row.slug ? `${gateway.publicUrl}${gateway.mcpPrefix}/${encodeURIComponent(row.slug)}` : undefined;
  const title = nonBlank(row.title);
  const server: ServerJson = {
    $schema: SERVER_JSON_SCHEMA_URL,
    name: row.name,
    ...(title ? { title: clip(title, SERVER_JSON_TEXT_MAX) } : {}),
    // server.json requires a description; a server registered without one is described by its title or name.
    description: clip(nonBlank(row.description) ?? title ?? row.name, SERVER_JSON_TEXT_MAX),
    version: row.version,
    remotes: url ? [{ type: 'streamable-http', url }] : [],
  };
  const statusMessage = row.status === 'deprecated' ? nonBlank(row.statusMessage) : undefined;
  const official: OfficialMeta = {
    status: row.status,
    ...(statusMessage ? { statusMessage: clip(statusMessage, STATUS_MESSAGE_MAX) } : {}),
    publishedAt: row.publishedAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    isLatest: row.isLatest,
  };
  // The spread goes last: on Node 20 an object literal that starts with one had V8 promote what this function
  // made to the old generation (10 KB of every page of 30, `--trace-gc-nvp`), feeding full collections.
  const gatewayMeta: GatewayMeta = {
    health: row.health ?? 'unknown',
    toolCount: row.toolCount,
    requiredRoles: row.allowedRoles,
    ...(row.slug && url ? { slug: row.slug, url } : {}),
  };
  return { server, _meta: { [OFFICIAL_META_KEY]: official, [GATEWAY_META_KEY]: gatewayMeta } };
}

/** At most `max` code points (what JSON Schema's maxLength counts), ending with an ellipsis when cut. */
export function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

function nonBlank(text: string | null): string | undefined {
  const trimmed = text?.trim();
  return trimmed ? trimmed : undefined;
}
