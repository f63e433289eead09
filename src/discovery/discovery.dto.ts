import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';
import { singleLine } from '../common/plain-text';
import { SERVER_SLUG } from '../registry/server.schema';
import { ITEM_KINDS } from './fingerprint';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const SEARCH_LIMIT_DEFAULT = 30;
export const SEARCH_LIMIT_MAX = 100;

const searchQuerySchema = z
  .object({
    q: singleLine(z.string().trim().max(200))
      .optional()
      .describe('Case-insensitive substring of the name (URI), title or description; `%` and `_` match literally'),
    server: z
      .string()
      .refine((text) => UUID.test(text) || SERVER_SLUG.test(text), 'must be a server id or slug')
      .optional()
      .describe('Only this server, by id or slug'),
    tag: singleLine(z.string().min(1).max(100)).optional().describe('Only servers with this tag'),
    cursor: z.string().min(1).optional().describe('`nextCursor` of the previous page'),
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(SEARCH_LIMIT_MAX)
      .default(SEARCH_LIMIT_DEFAULT)
      .describe(`Page size, 1 to ${SEARCH_LIMIT_MAX}`),
  })
  .strict();

export class SearchQueryDto extends createZodDto(searchQuerySchema) {}
export type SearchQuery = z.infer<typeof searchQuerySchema>;

const json = z.record(z.string(), z.unknown());
const nullableText = z.string().nullable();

const serverRefSchema = z.object({ id: z.string(), slug: z.string(), name: z.string() });

const itemBase = {
  gatewayName: z.string().describe('What the aggregate MCP endpoint calls it (see gateway-names.ts)'),
  title: nullableText,
  description: nullableText,
  fingerprint: z.string().describe('sha256 (hex) over the canonical JSON of the identifying fields'),
};

const toolViewSchema = z.object({
  name: z.string(),
  ...itemBase,
  definition: json.describe('As the upstream sent it'),
});
const resourceViewSchema = z.object({
  uri: z.string(),
  name: nullableText,
  ...itemBase,
  mimeType: nullableText,
  definition: json,
});
const resourceTemplateViewSchema = z.object({
  uriTemplate: z.string(),
  name: nullableText,
  ...itemBase,
  mimeType: nullableText,
  definition: json,
});

const itemKindSchema = z.enum(ITEM_KINDS as [string, ...string[]]);

const changeViewSchema = z.object({
  kind: itemKindSchema,
  name: z.string(),
  change: z.enum(['added', 'removed', 'changed']),
  beforeFingerprint: nullableText,
  afterFingerprint: nullableText,
  detectedAt: z.string(),
});

const capabilitiesViewSchema = z.object({
  server: z.object({ id: z.string(), slug: z.string(), name: z.string(), status: z.string() }),
  serverInfo: json.nullable().describe('The upstream `serverInfo` from initialize'),
  protocolVersion: nullableText,
  capabilities: json.nullable(),
  instructions: nullableText,
  syncedAt: nullableText.describe('When the last successful sync finished'),
  lastError: z
    .object({ kind: z.string(), message: z.string(), at: z.string() })
    .nullable()
    .describe('Why the latest sync failed; null once one succeeds'),
  watch: z
    .enum(['connected', 'connecting', 'reconnecting', 'off'])
    .describe('The list-changed session of this instance with the upstream'),
  tools: z.array(toolViewSchema),
  prompts: z.array(toolViewSchema),
  resources: z.array(resourceViewSchema),
  resourceTemplates: z.array(resourceTemplateViewSchema),
  changes: z.array(changeViewSchema).describe('The 50 most recent item changes, newest first'),
  nameCollisions: z
    .array(z.object({ kind: itemKindSchema, gatewayName: z.string(), names: z.array(z.string()) }))
    .describe('Gateway names more than one upstream item maps to; the aggregate endpoint exposes none of them'),
});

export class CapabilitiesViewDto extends createZodDto(capabilitiesViewSchema) {}
export type CapabilitiesView = z.infer<typeof capabilitiesViewSchema>;
export type ToolView = z.infer<typeof toolViewSchema>;
export type ResourceView = z.infer<typeof resourceViewSchema>;
export type ResourceTemplateView = z.infer<typeof resourceTemplateViewSchema>;
export type ChangeView = z.infer<typeof changeViewSchema>;

const summary = { server: serverRefSchema, ...itemBase };

const toolHitSchema = z.object({ name: z.string(), ...summary });
const resourceHitSchema = z.object({
  kind: z.enum(['resource', 'resource_template']),
  uri: z.string().optional().describe('Resources'),
  uriTemplate: z.string().optional().describe('Resource templates'),
  name: nullableText,
  ...summary,
  mimeType: nullableText,
});

const nextCursor = z.string().nullable().describe('Pass as `cursor` for the next page; null on the last one');

export class ToolSearchPageDto extends createZodDto(z.object({ items: z.array(toolHitSchema), nextCursor })) {}
export class ResourceSearchPageDto extends createZodDto(z.object({ items: z.array(resourceHitSchema), nextCursor })) {}

export type ToolHit = z.infer<typeof toolHitSchema>;
export type ResourceHit = z.infer<typeof resourceHitSchema>;
export interface SearchPage<T> {
  items: T[];
  nextCursor: string | null;
}
