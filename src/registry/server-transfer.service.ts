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
import { GATEWAY_META_KEY } from './server.schema';

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
    const { taken, notes } = withoutStoredVia(document);
    const result = await this.writeTaken(index, name, taken);
    return notes.length > 0 ? { ...result, notes } : result;
  }

  private async writeTaken(index: number, name: string | null, document: unknown): Promise<ImportResult> {
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

/**
 * `document` without a `Via` among its gateway settings' `auth.headers` (and its remote's headers), and a note of each
 * left out. A write may not name `Via` (the chain of gateways a request passed through, which the gateway appends its
 * entry to: src/upstream/gateway-via.ts), but a server stored before that was refused may, and its export holds it;
 * the gateway never sent it (src/upstream/upstream-connector.ts), so the backup imports as the server was reached: one
 * that named no other header with `auth` none. Anything else about the document is left for the schema to judge.
 */
function withoutStoredVia(document: unknown): { taken: unknown; notes: FieldError[] } {
  const meta = fieldOf(document, '_meta');
  const settings = fieldOf(meta, GATEWAY_META_KEY);
  const auth = fieldOf(settings, 'auth');
  const headers = fieldOf(auth, 'headers');
  if (fieldOf(auth, 'type') !== 'headers' || !isPlainObject(headers)) return { taken: document, notes: [] };
  const named = Object.keys(headers).filter(isVia);
  if (named.length === 0) return { taken: document, notes: [] };
  const kept = Object.fromEntries(Object.entries(headers).filter(([header]) => !isVia(header)));
  const none = Object.keys(kept).length === 0;
  const field = `_meta.${GATEWAY_META_KEY}.auth.headers`;
  const notes = named.map((header) => ({
    field: `${field}.${header}`,
    message:
      'left out: the gateway sets Via itself and never sent this one' +
      (none ? '; no other header was named, so auth is none, as the server was reached' : ''),
  }));
  const remotes = fieldOf(document, 'remotes');
  const remote = Array.isArray(remotes) ? (remotes[0] as unknown) : undefined;
  const remoteHeaders = fieldOf(remote, 'headers');
  const taken = {
    ...(document as Record<string, unknown>),
    ...(Array.isArray(remoteHeaders)
      ? {
          remotes: [
            { ...(remote as object), headers: remoteHeaders.filter((header) => !isVia(fieldOf(header, 'name'))) },
            ...(remotes as unknown[]).slice(1),
          ],
        }
      : {}),
    _meta: {
      ...(meta as object),
      [GATEWAY_META_KEY]: {
        ...(settings as object),
        auth: none ? { type: 'none' } : { ...(auth as object), headers: kept },
      },
    },
  };
  return { taken, notes };
}

function isVia(name: unknown): boolean {
  return typeof name === 'string' && name.toLowerCase() === 'via';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fieldOf(value: unknown, field: string): unknown {
  return isPlainObject(value) && Object.hasOwn(value, field) ? value[field] : undefined;
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
