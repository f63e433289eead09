import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';

/** `tid:oid`, or `tid:app:clientId` for app-only callers (as `principalKeyOf` makes them). */
export const PRINCIPAL_KEY =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:(app:)?[A-Za-z0-9._-]{1,128}$/;

export const ratelimitsQuerySchema = z
  .object({
    principal: z
      .string()
      .max(200)
      .regex(PRINCIPAL_KEY, 'must be a principal key: <tid>:<oid>, or <tid>:app:<clientId> for an app-only caller')
      .describe('The caller: `<tid>:<oid>`, or `<tid>:app:<clientId>` for an app-only caller (lower-case tenant GUID)'),
  })
  .strict();
export class RatelimitsQueryDto extends createZodDto(ratelimitsQuerySchema) {}

const bucketSchema = z.object({
  policy: z.string().describe('`principal`, `tenant`, `server.<slug>` or `tool.<slug>.<tool>`'),
  scope: z
    .enum(['principal', 'tenant', 'all'])
    .describe(
      "Whose budget it is: this caller's own, all callers' of its tenant together, or every caller's together " +
        '(a server or tool of `scope: all`, whoever spent it)',
    ),
  quota: z.number().int().describe('Units per window (the `q` of `RateLimit-Policy`)'),
  windowSeconds: z.number().int().describe('The window (the `w` of `RateLimit-Policy`)'),
  used: z.number().describe('Units spent and not yet replenished'),
  remaining: z.number().int().describe('Whole units available now (the `r` of `RateLimit`)'),
  fullInSeconds: z.number().int().describe('Seconds until the bucket is full again'),
});

export const ratelimitsSchema = z.object({
  principal: z.string(),
  store: z
    .enum(['redis', 'memory'])
    .describe('Where the budgets live: Redis (shared by every replica), or this process'),
  buckets: z
    .array(bucketSchema)
    .describe(
      "The budgets this caller is counted against that are not full: its own, its tenant's, and those every caller " +
        'shares (`scope: all`), whoever spent them; a budget not listed is full',
    ),
});
export class RatelimitsDto extends createZodDto(ratelimitsSchema) {}
export type Ratelimits = z.infer<typeof ratelimitsSchema>;
export type BucketView = z.infer<typeof bucketSchema>;
