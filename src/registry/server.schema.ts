import { z } from 'zod';
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
const upstreamAuthOf = (text: TextRule) =>
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
                .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), 'is set by the gateway itself'),
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
export const upstreamAuthSchema = upstreamAuthOf(asStored);
/** What a write may set as `auth`. */
export const upstreamAuthInputSchema = upstreamAuthOf(singleLine);
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

/** A stored server row's upstream settings, still as unparsed JSON. */
export interface StoredUpstream {
  id: string;
  slug: string;
  url: string;
  transport: unknown;
  auth: unknown;
  timeouts: unknown;
}

/** The target a stored row describes, or which stored setting no longer parses. */
export function parseUpstreamTarget(
  row: StoredUpstream,
): { target: UpstreamTarget } | { invalid: 'transport' | 'auth' | 'timeouts' } {
  const transport = transportSchema.safeParse(row.transport);
  if (!transport.success) return { invalid: 'transport' };
  const auth = upstreamAuthSchema.safeParse(row.auth);
  if (!auth.success) return { invalid: 'auth' };
  const timeouts = timeoutsSchema.safeParse(row.timeouts);
  if (!timeouts.success) return { invalid: 'timeouts' };
  return {
    target: {
      id: row.id,
      slug: row.slug,
      url: row.url,
      transport: transport.data,
      auth: auth.data,
      timeouts: timeouts.data,
    },
  };
}
