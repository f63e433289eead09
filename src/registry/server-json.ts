import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';
import type { FieldError } from '../common/domain-error';
import {
  allowedRolesSchema,
  descriptionSchema,
  serverNameSchema,
  serverSlugSchema,
  serverVersionSchema,
  type ServerView,
  statusMessageSchema,
  tagsSchema,
  titleSchema,
  upstreamUrlSchema,
} from './server.dto';
import {
  GATEWAY_META_KEY,
  serverStatusSchema,
  timeoutsSchema,
  toolRulesInputSchema,
  transportSchema,
  type UpstreamTransport,
  upstreamAuthInputSchema,
} from './server.schema';

/** The official server.json schema version that export writes and import reads. */
export const SERVER_JSON_SCHEMA_URL = 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json';

/** Gateway settings carried in server.json under `_meta["io.mcp-gateway/server"]`. */
export const gatewaySettingsSchema = z
  .object({
    slug: serverSlugSchema.optional(),
    auth: upstreamAuthInputSchema.optional(),
    tags: tagsSchema.optional(),
    status: serverStatusSchema.optional(),
    statusMessage: statusMessageSchema.nullish(),
    allowedRoles: allowedRolesSchema.optional(),
    timeouts: timeoutsSchema.optional(),
    toolRules: toolRulesInputSchema.optional(),
  })
  .strict();
export type GatewaySettings = z.output<typeof gatewaySettingsSchema>;

const keyValueInputSchema = z.looseObject({
  name: z.string().min(1).max(200),
  description: z.string().max(1000).optional(),
  isRequired: z.boolean().optional(),
  isSecret: z.boolean().optional(),
});

const remoteSchema = z.looseObject({
  type: z.string().min(1).max(50),
  url: z.string().min(1).max(2048),
  headers: z.array(keyValueInputSchema).max(50).optional(),
});

/**
 * server.json (schema 2025-12-11): the fields the gateway reads are checked
 * as the official schema does; others (packages, icons, repository, ...) are
 * accepted and not kept. Like the official schema, unknown fields are allowed.
 */
export const serverJsonSchema = z.looseObject({
  $schema: z.string().max(500).optional(),
  name: serverNameSchema,
  title: titleSchema.optional(),
  description: descriptionSchema
    .optional()
    .describe('Required by the official schema; optional here so that servers without one round-trip'),
  version: serverVersionSchema,
  websiteUrl: z.string().max(2048).optional(),
  repository: z.looseObject({ url: z.string().max(2048), source: z.string().max(100) }).optional(),
  icons: z
    .array(z.looseObject({ src: z.string().max(255) }))
    .max(20)
    .optional(),
  remotes: z.array(remoteSchema).max(20).optional().describe('`remotes[0]` is the upstream the gateway reaches'),
  packages: z.array(z.looseObject({})).max(50).optional(),
  _meta: z.looseObject({ [GATEWAY_META_KEY]: gatewaySettingsSchema.optional() }).optional(),
});
export type ServerJson = z.output<typeof serverJsonSchema>;
export class ServerJsonDto extends createZodDto(serverJsonSchema) {}

/** What one server.json document asks the registry to hold. */
export interface ImportedServer {
  name: string;
  title: string | null;
  description: string | null;
  version: string;
  url: string;
  transport: UpstreamTransport;
  settings: GatewaySettings;
}

export type ImportMapping = { ok: true; server: ImportedServer } | { ok: false; errors: FieldError[] };

export function fromServerJson(doc: ServerJson): ImportMapping {
  const remote = doc.remotes?.[0];
  if (!remote) {
    return {
      ok: false,
      errors: [{ field: 'remotes', message: 'must hold a remote: the upstream the gateway reaches' }],
    };
  }
  const transport = transportSchema.safeParse(remote.type);
  if (!transport.success) {
    return { ok: false, errors: [{ field: 'remotes.0.type', message: 'must be streamable-http or sse' }] };
  }
  const url = upstreamUrlSchema.safeParse(remote.url);
  if (!url.success) return { ok: false, errors: [{ field: 'remotes.0.url', message: 'must be a URL' }] };
  if (/[{}]/.test(url.data)) {
    const message = 'is a URL template; the gateway needs the concrete URL of the upstream';
    return { ok: false, errors: [{ field: 'remotes.0.url', message }] };
  }
  return {
    ok: true,
    server: {
      name: doc.name,
      title: doc.title ?? null,
      description: doc.description ?? null,
      version: doc.version,
      url: url.data,
      transport: transport.data,
      settings: doc._meta?.[GATEWAY_META_KEY] ?? {},
    },
  };
}

/** A server as server.json: remotes[0] is its upstream, gateway settings sit under our `_meta` key. */
export function toServerJson(server: ServerView): ServerJson {
  const headers =
    server.auth.type === 'headers'
      ? Object.keys(server.auth.headers).map((name) => ({ name, isRequired: true, isSecret: true }))
      : undefined;
  return {
    $schema: SERVER_JSON_SCHEMA_URL,
    name: server.name,
    ...(server.title !== null ? { title: server.title } : {}),
    ...(server.description !== null ? { description: server.description } : {}),
    version: server.version,
    remotes: [{ type: server.transport, url: server.url, ...(headers ? { headers } : {}) }],
    _meta: {
      [GATEWAY_META_KEY]: {
        slug: server.slug,
        auth: server.auth,
        tags: server.tags,
        status: server.status,
        ...(server.statusMessage !== null ? { statusMessage: server.statusMessage } : {}),
        allowedRoles: server.allowedRoles,
        timeouts: server.timeouts,
        toolRules: server.toolRules,
      },
    },
  };
}

/** Where a field of a registration lives in a server.json document, for import reports. */
export function serverJsonFieldOf(field: string): string {
  if (field === 'url') return 'remotes.0.url';
  if (field === 'transport') return 'remotes.0.type';
  if (field in gatewaySettingsSchema.shape) return `_meta.${GATEWAY_META_KEY}.${field}`;
  return field;
}
