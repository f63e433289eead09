import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';
import { serverJsonSchema } from './server-json';
import { unreadableServerSchema } from './server.dto';

export const MAX_IMPORT_DOCUMENTS = 1000;

export const importResultSchema = z.object({
  index: z.number().int().describe('Position of the document in the request'),
  name: z.string().nullable(),
  result: z.enum(['created', 'updated', 'unchanged', 'failed']),
  id: z.uuid().optional(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  notes: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .describe(
      'What was left out of the document to import it: a `Via` in `auth.headers`, which a server stored before it ' +
        'was refused may hold and its export carries',
    ),
});
export type ImportResult = z.infer<typeof importResultSchema>;

export const importReportSchema = z.object({
  results: z.array(importResultSchema),
  created: z.number().int(),
  updated: z.number().int(),
  unchanged: z.number().int(),
  failed: z.number().int(),
});
export type ImportReport = z.infer<typeof importReportSchema>;
export class ImportReportDto extends createZodDto(importReportSchema) {}

export const exportSchema = z.object({
  servers: z.array(serverJsonSchema),
  unreadable: z
    .array(unreadableServerSchema)
    .optional()
    .describe(
      'Stored servers the gateway cannot read, left out of `servers`; present only when there are some. An import ' +
        'of the document ignores this field',
    ),
});
export type ServerExport = z.infer<typeof exportSchema>;
export class ServerExportDto extends createZodDto(exportSchema) {}
