import { Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { DomainError, type FieldError } from '../common/domain-error';
import { RegistryService } from './registry.service';
import type { ServerFields } from './server-record';
import { type ImportReport, type ImportResult, MAX_IMPORT_DOCUMENTS } from './server-transfer.dto';
import {
  fromServerJson,
  type ImportedServer,
  type ServerJson,
  serverJsonFieldOf,
  serverJsonSchema,
  toServerJson,
} from './server-json';
import { serverInputSchema } from './server.dto';

const EXPORT_PAGE = 100;

/** server.json in and out: import matches by name (create or update), export writes every server. */
@Injectable()
export class ServerTransferService {
  constructor(private readonly registry: RegistryService) {}

  /** Documents are imported one by one, each in its own transaction; a failed one writes nothing. */
  async import(body: unknown): Promise<ImportReport> {
    const results: ImportResult[] = [];
    for (const [index, document] of documentsOf(body).entries()) {
      results.push(await this.importOne(index, document));
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

  async export(): Promise<{ servers: ServerJson[] }> {
    const servers: ServerJson[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.registry.list({ limit: EXPORT_PAGE, cursor });
      servers.push(...page.servers.map(toServerJson));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return { servers };
  }

  private async importOne(index: number, document: unknown): Promise<ImportResult> {
    const name = nameOf(document);
    const parsed = serverJsonSchema.safeParse(document);
    if (!parsed.success) return { index, name, result: 'failed', errors: fieldErrorsOf(parsed.error) };
    const mapped = fromServerJson(parsed.data);
    if (!mapped.ok) return { index, name, result: 'failed', errors: mapped.errors };
    const server = mapped.server;
    try {
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
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const errors = error.fieldErrors?.length
        ? error.fieldErrors.map((item) => ({ field: serverJsonFieldOf(item.field), message: item.message }))
        : [{ field: '(document)', message: error.detail }];
      return { index, name, result: 'failed', errors };
    }
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
  const extra = Object.keys(rest)[0];
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
