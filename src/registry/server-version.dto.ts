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

export const versionListSchema = z.object({
  name: z.string(),
  versions: z.array(versionSummarySchema).describe('The latest first, then the most recently published'),
});
export class ServerVersionListDto extends createZodDto(versionListSchema) {}

export const versionDetailSchema = versionSummarySchema.extend({
  name: z.string(),
  record: serverViewSchema.describe('The server as it was when this version was last written'),
});
export type VersionDetail = z.infer<typeof versionDetailSchema>;
export class ServerVersionDto extends createZodDto(versionDetailSchema) {}
