import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';
import { singleLine } from '../common/plain-text';

const nameList = (what: string) =>
  z
    .string()
    .max(4000)
    .transform((value) => value.split(/[\s,]+/).filter((item) => item.length > 0))
    .pipe(z.array(z.string().max(200, `each ${what} must be at most 200 characters`)).max(200));

export const explainQuerySchema = z
  .object({
    server: z.string().min(1).max(300).describe('Server id (uuid), slug or name'),
    tool: singleLine(z.string().min(1).max(200)).optional().describe('Tool name, as the upstream names it'),
    roles: nameList('role').optional().describe('App roles of the caller, comma-separated'),
    scopes: nameList('scope')
      .optional()
      .describe('Delegated scopes of the caller (short names), comma- or space-separated; omit for an app-only caller'),
  })
  .strict();
export class ExplainQueryDto extends createZodDto(explainQuerySchema) {}

const decisionSchema = z.object({
  allowed: z.boolean(),
  rule: z.string().describe('The rule that decided, e.g. `server-role:Reader`, `tool-deny:delete_*`'),
});

export const explanationSchema = z.object({
  server: z.object({ id: z.string(), slug: z.string(), name: z.string() }),
  tool: z.string().nullable(),
  caller: z.object({ roles: z.array(z.string()), scopes: z.array(z.string()), appOnly: z.boolean() }),
  allowed: z.boolean().describe('Whether such a caller may see the server and, when a tool is given, call it'),
  rule: z.string().describe('The rule that decided the answer'),
  scope: decisionSchema.describe('Whether the caller gets past the required-scope check of MCP_PREFIX'),
  see: decisionSchema.describe('Whether the caller sees the server'),
  call: decisionSchema.nullable().describe('Whether the caller may call the tool (null without `tool`)'),
});
export class ExplanationDto extends createZodDto(explanationSchema) {}
export type Explanation = z.infer<typeof explanationSchema>;
