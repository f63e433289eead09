import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { z } from 'zod';
import { databaseProblemOf } from '../common/database-errors';
import { DomainError, type FieldError } from '../common/domain-error';
import { RegistryService } from './registry.service';
import type { ServerFields } from './server-record';
import { type ImportReport, type ImportResult, MAX_IMPORT_DOCUMENTS, type ServerExport } from './server-transfer.dto';
import {
  fromServerJson,
  type ImportedServer,
  type ServerJson,
  serverJsonFieldOf,
  serverJsonSchema,
  toServerJson,
} from './server-json';
import { serverInputSchema, type UnreadableServerView } from './server.dto';

const EXPORT_PAGE = 100;

/** server.json in and out: import matches by name (create or update), export writes every server. */
@Injectable()
export class ServerTransferService {
  constructor(
    private readonly registry: RegistryService,
    @InjectPinoLogger(ServerTransferService.name) private readonly logger: PinoLogger,
  ) {}

  /**
   * Documents are imported one by one, each in its own transaction; a failed one writes nothing. Whatever
   * goes wrong with one document fails that document only, except a database too busy to take the write:
   * every document after it would wait out the same timeout, so those are reported failed without a try.
   */
  async import(body: unknown): Promise<ImportReport> {
    const results: ImportResult[] = [];
    let busy: string | undefined;
    for (const [index, document] of documentsOf(body).entries()) {
      if (busy !== undefined) {
        results.push({ index, name: nameOf(document), result: 'failed', errors: [notTried(busy)] });
        continue;
      }
      const outcome = await this.importOne(index, document);
      results.push(outcome.result);
      busy = outcome.busy;
    }
    const count = (result: ImportResult['result']) => results.filter((item) => item.result === result).length;
    return {
      results,
      created: count('created'),
      updated: count('updated'),
      unchanged: count('unchanged'),
      failed: count('failed'),
    };
  }

  /**
   * Every server as server.json; a stored server the gateway cannot read is named in `unreadable` (present only when
   * there are some), so that a backup holding less than the registry says so.
   */
  async export(): Promise<ServerExport> {
    const servers: ServerJson[] = [];
    const unreadable: UnreadableServerView[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.registry.list({ limit: EXPORT_PAGE, cursor });
      servers.push(...page.servers.map(toServerJson));
      unreadable.push(...(page.unreadable ?? []));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return unreadable.length > 0 ? { servers, unreadable } : { servers };
  }

  /** One document's result; `busy` says the database could not take the write, so the import stops. */
  private async importOne(index: number, document: unknown): Promise<{ result: ImportResult; busy?: string }> {
    const name = nameOf(document);
    const failed = (errors: FieldError[]) => ({ result: { index, name, result: 'failed' as const, errors } });
    try {
      return { result: await this.write(index, name, document) };
    } catch (error) {
      if (error instanceof DomainError) {
        return failed(
          error.fieldErrors?.length
            ? error.fieldErrors.map((item) => ({ field: serverJsonFieldOf(item.field), message: item.message }))
            : [{ field: '(document)', message: error.detail }],
        );
      }
      const problem = databaseProblemOf(error);
      if (problem) {
        const outcome = failed([{ field: '(document)', message: problem.detail }]);
        return problem.code === 'service_unavailable' ? { ...outcome, busy: problem.detail } : outcome;
      }
      const errorId = randomUUID();
      this.logger.error({ err: error, errorId, index }, 'importing a server.json document failed');
      return failed([{ field: '(document)', message: `an internal error occurred (error id ${errorId})` }]);
    }
  }

  private async write(index: number, name: string | null, document: unknown): Promise<ImportResult> {
    const parsed = serverJsonSchema.safeParse(document);
    if (!parsed.success) return { index, name, result: 'failed', errors: fieldErrorsOf(parsed.error) };
    const mapped = fromServerJson(parsed.data);
    if (!mapped.ok) return { index, name, result: 'failed', errors: mapped.errors };
    const server = mapped.server;
    const existing = await this.registry.findByName(server.name);
    if (!existing) {
      const input = serverInputSchema.safeParse({ ...server.settings, ...withoutSettings(server) });
      if (!input.success) {
        return { index, name, result: 'failed', errors: fieldErrorsOf(input.error, serverJsonFieldOf) };
      }
      const created = await this.registry.create(input.data);
      return { index, name, result: 'created', id: created.id };
    }
    const { server: updated, changed } = await this.registry.update(existing.id, server.url, undefined, (current) =>
      merged(current, server),
    );
    return { index, name, result: changed ? 'updated' : 'unchanged', id: updated.id };
  }
}

/**
 * The documents of an import body: the array itself, `servers` of an
 * envelope, or the one document. Only the envelope is checked here; each
 * document is validated on its own so that one bad document does not stop the others.
 */
function documentsOf(body: unknown): unknown[] {
  if (Array.isArray(body)) return checkedCount(body, '(body)');
  if (typeof body !== 'object' || body === null) {
    throw invalidImport('(body)', 'must be a server.json document, an array of them, or { "servers": [...] }');
  }
  if (!('servers' in body) || 'name' in body) return [body];
  const { servers, ...rest } = body;
  // An export's `unreadable` names servers it could not hold: nothing to import of them.
  const extra = Object.keys(rest).find((key) => key !== 'unreadable');
  if (extra !== undefined) throw invalidImport(extra, 'is not a field of an import envelope; send `servers` only');
  if (!Array.isArray(servers)) throw invalidImport('servers', 'must be an array of server.json documents');
  return checkedCount(servers, 'servers');
}

function checkedCount(documents: unknown[], field: string): unknown[] {
  if (documents.length === 0 || documents.length > MAX_IMPORT_DOCUMENTS) {
    throw invalidImport(field, `must hold 1 to ${MAX_IMPORT_DOCUMENTS} server.json documents`);
  }
  return documents;
}

function notTried(reason: string): FieldError {
  return { field: '(document)', message: `not imported: the import stopped at an earlier document (${reason})` };
}

function invalidImport(field: string, message: string): DomainError {
  return new DomainError('validation_error', 'the import is not valid', [{ field, message }]);
}

function withoutSettings(server: ImportedServer): Omit<ImportedServer, 'settings'> {
  const { settings: _settings, ...rest } = server;
  return rest;
}

/** An update from server.json: its own fields replace; gateway settings replace only those it carries. */
function merged(current: ServerFields, server: ImportedServer): ServerFields {
  const settings = server.settings;
  return {
    name: current.name,
    slug: settings.slug ?? current.slug,
    title: server.title,
    description: server.description,
    version: server.version,
    url: server.url,
    transport: server.transport,
    auth: settings.auth ?? current.auth,
    tags: settings.tags ?? current.tags,
    status: settings.status ?? current.status,
    statusMessage: settings.statusMessage === undefined ? current.statusMessage : settings.statusMessage,
    allowedRoles: settings.allowedRoles ?? current.allowedRoles,
    timeouts: settings.timeouts ?? current.timeouts,
    toolRules: settings.toolRules ?? current.toolRules,
  };
}

function nameOf(document: unknown): string | null {
  const name = typeof document === 'object' && document !== null ? (document as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name.length <= 200 ? name : null;
}

function fieldErrorsOf(error: z.ZodError, place = (field: string) => field): FieldError[] {
  return error.issues.map((issue) => ({
    field: place(issue.path.map(String).join('.')) || '(document)',
    message: issue.message,
  }));
}
