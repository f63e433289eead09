import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';
import { serverViewSchema } from './server.dto';

export const versionStatusSchema = z.enum(['active', 'deprecated', 'disabled', 'deleted']);
export type VersionStatus = z.infer<typeof versionStatusSchema>;

const versionSummarySchema = z.object({
  version: z.string(),
  status: versionStatusSchema.describe('The server status while this version was latest; `deleted` once removed'),
  isLatest: z.boolean(),
  publishedAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type VersionSummary = z.infer<typeof versionSummarySchema>;

/** A stored version the gateway cannot read, as a list names it instead of showing it. */
export const unreadableVersionSchema = z.object({
  version: z.string(),
  problems: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .describe('Each stored field that is not what its schema allows (`status`, or `record.…`), and why'),
});
export type UnreadableVersionView = z.infer<typeof unreadableVersionSchema>;

export const versionListSchema = z.object({
  name: z.string(),
  versions: z.array(versionSummarySchema).describe('The latest first, then the most recently published'),
  unreadable: z
    .array(unreadableVersionSchema)
    .optional()
    .describe(
      'Versions whose stored row the gateway cannot read, left out of `versions` (each answered 409 alone); present ' +
        'only when there are some',
    ),
});
export class ServerVersionListDto extends createZodDto(versionListSchema) {}

export const versionDetailSchema = versionSummarySchema.extend({
  name: z.string(),
  record: serverViewSchema.describe('The server as it was when this version was last written'),
});
export type VersionDetail = z.infer<typeof versionDetailSchema>;
export class ServerVersionDto extends createZodDto(versionDetailSchema) {}
