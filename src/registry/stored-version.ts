import type { z } from 'zod';
import type { FieldError } from '../common/domain-error';
import { type ServerView, serverViewSchema } from './server.dto';
import { type VersionStatus, versionStatusSchema } from './server-version.dto';

/** A stored version of a server's history the gateway cannot read: which one, and each field at fault. */
export interface UnreadableVersion {
  name: string;
  version: string;
  /** `status`, or a field of its record (`record.auth.type`; `record` when it is no object), and why (never its value). */
  problems: FieldError[];
}

/** Whether a version read from the history (the registry's or the official registry API's) could not be read. */
export function isUnreadableVersion<Read extends object>(row: Read | UnreadableVersion): row is UnreadableVersion {
  return 'problems' in row;
}

/**
 * A stored version's status and record as `/servers/{ref}/versions` shows them, or each that is not what its schema
 * allows (a direct database write, a restore, an older version): such a version is named apart in a list and answered
 * 409 alone, so that one bad row neither hides the others nor answers 500.
 */
export function readStoredVersion(row: {
  status: string;
  record: unknown;
}): { status: VersionStatus; record: ServerView } | { problems: FieldError[] } {
  const status = versionStatusSchema.safeParse(row.status);
  const record = serverViewSchema.safeParse(row.record);
  if (status.success && record.success) return { status: status.data, record: record.data };
  return { problems: [...problemsOf('status', status.error), ...problemsOf('record', record.error)] };
}

/** The fields of a version's record the official registry API publishes, read with the same schema. */
export const publishedRecordSchema = serverViewSchema.pick({
  title: true,
  description: true,
  slug: true,
  allowedRoles: true,
  statusMessage: true,
});
export type PublishedRecord = z.infer<typeof publishedRecordSchema>;

/**
 * What the official registry API reads of a stored version: its status and the published fields of its record (the
 * record itself when it is no object), or each that it cannot read. The rest of the record is neither read nor judged
 * there: a version whose upstream settings alone are bad is published as it was.
 */
export function readPublishedVersion(row: {
  status: string;
  published: unknown;
}): { status: VersionStatus; published: PublishedRecord } | { problems: FieldError[] } {
  const status = versionStatusSchema.safeParse(row.status);
  const published = publishedRecordSchema.safeParse(row.published);
  if (status.success && published.success) return { status: status.data, published: published.data };
  return { problems: [...problemsOf('status', status.error), ...problemsOf('record', published.error)] };
}

function problemsOf(field: string, error: z.ZodError | undefined): FieldError[] {
  return (error?.issues ?? []).map((issue) => ({
    field: [field, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
}
