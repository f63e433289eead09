import { z } from 'zod';
import type { FieldError } from '../common/domain-error';
import { singleLine } from '../common/plain-text';
import { clientKeyed } from '../common/record-keys';

/** Shapes of a registered server shared by the registry, discovery, the prober and the MCP gateway. */

export const SERVER_NAME = /^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/;
export const SERVER_SLUG = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** Environment variable names a header secret may come from. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** RFC 9110 token: what a header name may be. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

/** Headers the gateway sets itself; a registration may not override them. */
export const RESERVED_HEADERS = new Set([
  'authorization',
  'host',
  'content-length',
  'content-type',
  'accept',
  'connection',
  'transfer-encoding',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
]);

/**
 * Headers a write may not name besides: `via` carries the chain of gateways a request passed through, which the
 * gateway appends its entry to (loop detection, src/upstream/gateway-via.ts). Stored before it was refused, it is
 * read (the connector leaves it out), so that such a server is not made unreadable.
 */
const RESERVED_ON_WRITE = new Set([...RESERVED_HEADERS, 'via']);

export const transportSchema = z.enum(['streamable-http', 'sse']);
export type UpstreamTransport = z.infer<typeof transportSchema>;

export const serverStatusSchema = z.enum(['active', 'deprecated', 'disabled']);
export type ServerStatus = z.infer<typeof serverStatusSchema>;

/**
 * How a write's free text is checked (src/common/plain-text.ts). What is read back from the database is
 * parsed as it was allowed to be stored, so that a rule made stricter later never turns a stored server
 * into one that cannot be read.
 */
type TextRule = (schema: z.ZodString) => z.ZodString;
const asStored: TextRule = (schema) => schema;

/**
 * How the gateway authenticates to the upstream. Static header values are
 * never stored: each names the environment variable holding it.
 */
const upstreamAuthOf = (text: TextRule, reserved: ReadonlySet<string>) =>
  z.discriminatedUnion('type', [
    z.object({ type: z.literal('none') }).strict(),
    z
      .object({
        type: z.literal('headers'),
        headers: clientKeyed(
          z
            .record(
              z
                .string()
                .regex(HEADER_NAME, 'must be a valid header name')
                .refine((name) => !reserved.has(name.toLowerCase()), 'is set by the gateway itself'),
              z.object({ env: z.string().regex(ENV_NAME, 'must be an environment variable name') }).strict(),
            )
            .refine((headers) => Object.keys(headers).length > 0, 'must name at least one header')
            .refine((headers) => Object.keys(headers).length <= 20, 'must name at most 20 headers'),
        ),
      })
      .strict(),
    z
      .object({
        type: z.enum(['entra-obo', 'entra-client-credentials']),
        scope: text(z.string().min(1).max(500)),
      })
      .strict(),
  ]);
export const upstreamAuthSchema = upstreamAuthOf(asStored, RESERVED_HEADERS);
/** What a write may set as `auth`. */
export const upstreamAuthInputSchema = upstreamAuthOf(singleLine, RESERVED_ON_WRITE);
export type UpstreamAuth = z.infer<typeof upstreamAuthSchema>;

export const timeoutsSchema = z
  .object({
    connectMs: z.number().int().min(1).max(600_000).optional(),
    requestMs: z.number().int().min(1).max(3_600_000).optional(),
  })
  .strict();
export type ServerTimeouts = z.infer<typeof timeoutsSchema>;

/** What the gateway needs to reach one upstream. */
export interface UpstreamTarget {
  id: string;
  slug: string;
  url: string;
  transport: UpstreamTransport;
  auth: UpstreamAuth;
  timeouts: ServerTimeouts;
}

/** Our reverse-DNS key in server.json `_meta`: gateway settings on import/export, gateway data in the registry API. */
export const GATEWAY_META_KEY = 'io.mcp-gateway/server';

/** Glob lists on tool names (`*` any run of characters, `?` one); deny wins over allow; an empty allow list allows all. */
const toolRulesOf = (text: TextRule) =>
  z
    .object({
      allow: z
        .array(text(z.string().min(1).max(200)))
        .max(100)
        .optional(),
      deny: z
        .array(text(z.string().min(1).max(200)))
        .max(100)
        .optional(),
    })
    .strict();
export const toolRulesSchema = toolRulesOf(asStored);
/** What a write may set as `toolRules`. */
export const toolRulesInputSchema = toolRulesOf(singleLine);
export type ToolRules = z.infer<typeof toolRulesSchema>;

/**
 * A stored upstream URL: one the URL policy's parse reads (src/upstream/url-guard.ts), http or https. Where it may
 * lead is the policy's to judge, when written and before each connection; a URL it cannot even parse is no setting.
 */
const storedUrlSchema = z.string().refine((url) => {
  if (!URL.canParse(url)) return false;
  const { protocol } = new URL(url);
  return protocol === 'http:' || protocol === 'https:';
}, 'must be an http or https URL');

/**
 * The schema each stored field of a server row that a column's type does not already check is read with: a row with
 * one of them not so (a direct database write, a restore, an older version) is one the gateway cannot read. (A NULL
 * element of `tags` or `allowed_roles` never gets this far: Prisma refuses the whole row, P2023.)
 */
const STORED_FIELDS = {
  url: storedUrlSchema,
  transport: transportSchema,
  auth: upstreamAuthSchema,
  status: serverStatusSchema,
  timeouts: timeoutsSchema,
  toolRules: toolRulesSchema,
} as const;

type StoredFieldName = keyof typeof STORED_FIELDS;

/** A stored server row's checked fields, as the database holds them. */
export type StoredServerFields = Record<StoredFieldName, unknown>;

/** The checked fields read. */
export type ReadServerFields = { [K in StoredFieldName]: z.infer<(typeof STORED_FIELDS)[K]> };

/**
 * A stored server row's checked fields read, and each that is not what its schema allows (`toolRules.allow`:
 * expected array, received string), with zod's reason, which never repeats the value. Every reader of the servers
 * table (the registry, the prober, discovery, the MCP endpoints) takes a row with problems as one it cannot read;
 * `fields` then holds each field at fault as stored, and is nothing to use.
 */
export function readStoredFields(row: StoredServerFields): { fields: ReadServerFields; problems: FieldError[] } {
  const problems: FieldError[] = [];
  const fields: Partial<Record<StoredFieldName, unknown>> = {};
  for (const [field, schema] of Object.entries(STORED_FIELDS) as [StoredFieldName, z.ZodType][]) {
    const parsed = schema.safeParse(row[field]);
    fields[field] = parsed.success ? parsed.data : row[field];
    for (const issue of parsed.error?.issues ?? []) {
      problems.push({ field: [field, ...issue.path.map(String)].join('.'), message: issue.message });
    }
  }
  return { fields: fields as ReadServerFields, problems };
}

/** A stored server row's upstream settings, still as unparsed JSON, with the rest of what is checked. */
export interface StoredUpstream extends StoredServerFields {
  id: string;
  slug: string;
}

/** The target a stored row describes, or each stored field the gateway cannot read (see readStoredFields). */
export function parseUpstreamTarget(row: StoredUpstream): { target: UpstreamTarget } | { problems: FieldError[] } {
  const { fields, problems } = readStoredFields(row);
  if (problems.length > 0) return { problems };
  const { url, transport, auth, timeouts } = fields;
  return { target: { id: row.id, slug: row.slug, url, transport, auth, timeouts } };
}
