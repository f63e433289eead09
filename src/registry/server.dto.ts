import { createZodDto, refTo } from '../common/zod-dto';
import { z } from 'zod';
import { pageSizeParam } from '../common/page-size';
import { multiLine, singleLine } from '../common/plain-text';
import { RESERVED_SLUGS } from './slug';
import { REGISTERED_NAME } from './server-ref';
import {
  SERVER_SLUG,
  serverStatusSchema,
  timeoutsSchema,
  toolRulesInputSchema,
  toolRulesSchema,
  transportSchema,
  upstreamAuthInputSchema,
  upstreamAuthSchema,
} from './server.schema';

/** Semver-ish, as server.json asks; ranges (`^1.2`, `>=1`, `1.*`) and `latest` are refused. */
export const SERVER_VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]*$/;
export const TAG = /^[a-z0-9][a-z0-9-]{0,49}$/;
/** Entra app role values: printable ASCII without spaces or commas. */
export const ROLE = /^[\x21-\x2b\x2d-\x7e]{1,128}$/;
export const DEFAULT_VERSION = '0.0.0';

export const serverNameSchema = z
  .string()
  .min(3)
  .max(200)
  .regex(REGISTERED_NAME, 'must be a reverse-DNS name such as com.example/weather')
  .describe('Reverse-DNS name, unique: `com.example/weather`');

export const serverSlugSchema = z
  .string()
  .regex(SERVER_SLUG, 'must be 1-32 lowercase letters, digits and dashes, starting with a letter or digit')
  .refine((slug) => !RESERVED_SLUGS.has(slug), 'is reserved')
  .describe('Unique short name used in `/mcp/{slug}`; derived from the name when omitted');

export const serverVersionSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(SERVER_VERSION, 'must be a version such as 1.0.2 (no ranges)')
  .refine((version) => version.toLowerCase() !== 'latest', 'must be a specific version, not "latest"');

export const titleSchema = singleLine(z.string().min(1).max(100));
export const descriptionSchema = multiLine(z.string().min(1).max(100));
export const statusMessageSchema = multiLine(z.string().min(1).max(500));
export const upstreamUrlSchema = singleLine(z.string().min(1).max(2048)).describe(
  'Upstream MCP endpoint (http or https)',
);

const unique = <T>(items: T[]): T[] => [...new Set(items)];
export const tagsSchema = z
  .array(z.string().regex(TAG, 'must be 1-50 lowercase letters, digits and dashes'))
  .max(20)
  .overwrite(unique);
export const allowedRolesSchema = z
  .array(z.string().regex(ROLE, 'must be 1-128 printable characters without spaces or commas'))
  .max(50)
  .overwrite(unique)
  .describe('Roles that may reach this server through /mcp');

/** Everything a registration may set; what PUT replaces. */
export const serverInputSchema = z
  .object({
    name: serverNameSchema,
    slug: serverSlugSchema.optional(),
    title: titleSchema.nullish(),
    description: descriptionSchema.nullish(),
    version: serverVersionSchema.default(DEFAULT_VERSION),
    url: upstreamUrlSchema,
    transport: transportSchema.default('streamable-http'),
    auth: upstreamAuthInputSchema.default({ type: 'none' }),
    tags: tagsSchema.default([]),
    status: serverStatusSchema.default('active'),
    statusMessage: statusMessageSchema.nullish(),
    allowedRoles: allowedRolesSchema.default([]),
    timeouts: timeoutsSchema.default({}),
    toolRules: toolRulesInputSchema.default({}),
  })
  .strict();
export type ServerInput = z.output<typeof serverInputSchema>;
export class ServerInputDto extends createZodDto(serverInputSchema) {}

/** PATCH: the fields present replace the stored ones; `null` clears title, description and statusMessage. */
export const serverPatchSchema = z
  .object({
    name: serverNameSchema.optional().describe('Cannot change; accepted when equal to the current name'),
    slug: serverSlugSchema.optional(),
    title: titleSchema.nullish(),
    description: descriptionSchema.nullish(),
    version: serverVersionSchema.optional(),
    url: upstreamUrlSchema.optional(),
    transport: transportSchema.optional(),
    auth: upstreamAuthInputSchema.optional(),
    tags: tagsSchema.optional(),
    status: serverStatusSchema.optional(),
    statusMessage: statusMessageSchema.nullish(),
    allowedRoles: allowedRolesSchema.optional(),
    timeouts: timeoutsSchema.optional(),
    toolRules: toolRulesInputSchema.optional(),
  })
  .strict();
export type ServerPatch = z.output<typeof serverPatchSchema>;
export class ServerPatchDto extends createZodDto(serverPatchSchema) {}

export const serverViewSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  slug: z.string(),
  title: z.string().nullable(),
  description: z.string().nullable(),
  version: z.string(),
  url: z.string(),
  transport: transportSchema,
  auth: upstreamAuthSchema,
  tags: z.array(z.string()),
  status: serverStatusSchema,
  statusMessage: z.string().nullable(),
  allowedRoles: z.array(z.string()),
  timeouts: timeoutsSchema,
  toolRules: toolRulesSchema,
  revision: z.number().int().describe('Bumped by every write; the ETag derives from id and revision'),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
/** A registered server as the API shows it (and as each version's record keeps it). */
export type ServerView = z.infer<typeof serverViewSchema>;
export class ServerDto extends createZodDto(serverViewSchema) {}

/** A stored server the gateway cannot read, as a list names it instead of showing it. */
export const unreadableServerSchema = z.object({
  id: z.string(),
  name: z.string(),
  slug: z.string(),
  problems: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .describe('Each stored field that is not what its schema allows, and why'),
});

export type UnreadableServerView = z.infer<typeof unreadableServerSchema>;

export const serverListSchema = z.object({
  servers: z.array(refTo(ServerDto)),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  unreadable: z
    .array(unreadableServerSchema)
    .optional()
    .describe(
      'Servers of this page whose stored row the gateway cannot read, left out of `servers`; present only when there ' +
        'are some. Repair one with PUT, or PATCH giving each field of `problems`, or DELETE it',
    ),
});
export class ServerListDto extends createZodDto(serverListSchema) {}

export const listServersQuerySchema = z
  .object({
    limit: pageSizeParam(100, 30),
    cursor: z.string().max(200).optional().describe('`nextCursor` of the previous page'),
    tag: z.string().regex(TAG, 'must be a tag').optional().describe('Only servers with this tag'),
    status: serverStatusSchema.optional(),
    q: singleLine(z.string().max(200)).optional().describe('Case-insensitive substring of name, title or description'),
  })
  .strict();
export class ListServersQueryDto extends createZodDto(listServersQuerySchema) {}
