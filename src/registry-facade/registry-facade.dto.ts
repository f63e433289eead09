import { z } from 'zod';
import { createZodDto, refTo } from '../common/zod-dto';
import { GATEWAY_META_KEY } from '../registry/server.schema';
import { HEALTH_STATUSES } from '../upstream-health/health-state';
import {
  OFFICIAL_META_KEY,
  SERVER_JSON_SCHEMA_URL,
  SERVER_JSON_TEXT_MAX,
  STATUS_MESSAGE_MAX,
} from './official-registry.types';

/*
 * The answers of the official read API as /docs-json describes them: the spec's `ServerList`, `ServerResponse`
 * and error body (modelcontextprotocol/registry docs/reference/api/openapi.yaml), narrowed to what this gateway
 * fills (official-registry.types.ts). Only for the document, whose schemas take the classes' names: nothing is
 * parsed with them.
 */

const serverJsonSchema = z
  .object({
    $schema: z.string().describe(`Always ${SERVER_JSON_SCHEMA_URL}`),
    name: z.string().describe('Reverse-DNS server name'),
    title: z.string().max(SERVER_JSON_TEXT_MAX).optional(),
    description: z.string().max(SERVER_JSON_TEXT_MAX).describe('The title or name when the server has none'),
    version: z.string(),
    remotes: z
      .array(z.object({ type: z.literal('streamable-http'), url: z.url() }))
      .describe("The gateway's endpoint for the server (`$PUBLIC_URL/mcp/{slug}`); empty for a deleted one"),
  })
  .describe('server.json (schema 2025-12-11)');

const officialMetaSchema = z.object({
  status: z.enum(['active', 'deprecated', 'deleted']),
  statusMessage: z.string().max(STATUS_MESSAGE_MAX).optional().describe('Only on a deprecated server'),
  publishedAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  isLatest: z.boolean(),
});

const gatewayMetaSchema = z.object({
  slug: z.string().optional().describe('Absent only for a deleted server whose record lacks one'),
  url: z.url().optional().describe('Where MCP clients connect: the gateway, never the upstream'),
  health: z.enum(HEALTH_STATUSES),
  toolCount: z.int().min(0),
  requiredRoles: z.array(z.string()).describe('Any one of them reaches the server; empty: any caller'),
});

const serverResponseSchema = z
  .object({
    server: serverJsonSchema,
    _meta: z.object({
      [OFFICIAL_META_KEY]: officialMetaSchema,
      [GATEWAY_META_KEY]: gatewayMetaSchema,
    }),
  })
  .describe('API response format with separated server data and registry metadata');
export class ServerResponse extends createZodDto(serverResponseSchema) {}

const serverListSchema = z
  .object({
    servers: z.array(refTo(ServerResponse)),
    metadata: z.object({
      nextCursor: z.string().optional().describe('Absent on the last page'),
      count: z.int().min(0).describe('Entries on this page'),
    }),
  })
  .describe('One page of servers');
export class ServerList extends createZodDto(serverListSchema) {}

const registryErrorSchema = z
  .object({
    error: z.string().describe("What went wrong; the spec's field"),
    title: z.string().describe('The HTTP reason phrase'),
    status: z.int(),
    detail: z.string().describe('The same as `error`'),
    errors: z
      .array(z.object({ location: z.string().describe('e.g. `query.limit`'), message: z.string() }))
      .optional()
      .describe('One entry per invalid parameter'),
    errorId: z.string().optional().describe('Only on 5xx: the id of the logged error'),
  })
  .describe('An error: the spec gives `{ error }`; the other fields are what the official registry adds (RFC 9457)');
export class RegistryError extends createZodDto(registryErrorSchema) {}
