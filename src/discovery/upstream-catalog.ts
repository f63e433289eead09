import {
  type ClientRequest,
  ErrorCode,
  McpError,
  PromptSchema,
  ResourceSchema,
  ResourceTemplateSchema,
  ToolSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { UpstreamSession } from '../upstream/upstream-connector';
import { UpstreamError } from '../upstream/upstream-error';
import { ITEM_KINDS, type ItemKind } from './fingerprint';

// Unknown fields stay: `definition` is stored verbatim. The list itself is checked below, by kind.
const pageSchema = z.looseObject({ nextCursor: z.string().nullish() });

/** A definition as the upstream sent it: every field kept, including ones this gateway does not know. */
export type Definition = Record<string, unknown>;

/** What one sync reads from an upstream. */
export interface UpstreamCatalog {
  serverInfo: Definition | null;
  protocolVersion: string | null;
  capabilities: Definition;
  instructions: string | null;
  definitions: Record<ItemKind, Definition[]>;
  /** Kinds whose listing stopped at a limit (or at a repeated cursor) before the upstream's end. */
  truncated: ItemKind[];
  /** Items left out: not valid MCP definitions, or a name (URI) listed twice. */
  skipped: { kind: ItemKind; key: string; reason: string }[];
}

export interface CatalogLimits {
  /** Per kind; the rest is left out and the kind reported as truncated. */
  maxItems: number;
  /** Per kind; bounds an upstream that keeps handing out cursors. */
  maxPages: number;
}

export const CATALOG_LIMITS: CatalogLimits = { maxItems: 10_000, maxPages: 1_000 };

export interface ReadOptions {
  /** Bounds each list request. */
  timeoutMs: number;
  signal?: AbortSignal;
  limits?: CatalogLimits;
}

interface ListSpec {
  capability: 'tools' | 'prompts' | 'resources';
  resultKey: string;
  keyField: string;
  schema: { safeParse(value: unknown): { success: boolean } };
}

const LISTS: Record<ItemKind, ListSpec> = {
  tool: { capability: 'tools', resultKey: 'tools', keyField: 'name', schema: ToolSchema },
  prompt: { capability: 'prompts', resultKey: 'prompts', keyField: 'name', schema: PromptSchema },
  resource: { capability: 'resources', resultKey: 'resources', keyField: 'uri', schema: ResourceSchema },
  resource_template: {
    capability: 'resources',
    resultKey: 'resourceTemplates',
    keyField: 'uriTemplate',
    schema: ResourceTemplateSchema,
  },
};

/** The key an item is stored under: its name, or its URI (template) for resources. */
export function itemKeyOf(kind: ItemKind, definition: Definition): string {
  const key = definition[LISTS[kind].keyField];
  return typeof key === 'string' ? key : '';
}

/**
 * Reads the server's identity and everything its capabilities advertise,
 * following `nextCursor` to the end (within `limits`). Pages are read with a
 * schema that keeps unknown fields, then each item is checked against the
 * SDK's schema on its own, so one malformed item does not fail the sync.
 */
export async function readCatalog(session: UpstreamSession, options: ReadOptions): Promise<UpstreamCatalog> {
  const { client } = session;
  const capabilities = (client.getServerCapabilities() ?? {}) as Definition;
  const catalog: UpstreamCatalog = {
    serverInfo: (client.getServerVersion() as Definition | undefined) ?? null,
    protocolVersion: session.protocolVersion ?? null,
    capabilities,
    instructions: client.getInstructions() ?? null,
    definitions: { tool: [], prompt: [], resource: [], resource_template: [] },
    truncated: [],
    skipped: [],
  };
  const stop = options.signal ? AbortSignal.any([options.signal, session.tooLarge]) : session.tooLarge;
  const signals = new RequestSignals(stop);
  try {
    for (const kind of ITEM_KINDS) {
      if (!capabilities[LISTS[kind].capability]) continue;
      const listed = await listAll(session, kind, options, signals);
      catalog.definitions[kind] = listed.definitions;
      if (listed.truncated) catalog.truncated.push(kind);
      catalog.skipped.push(...listed.skipped);
    }
  } catch (error) {
    // The SDK reports a request whose signal aborted as timed out, whatever the reason.
    throw session.tooLarge.aborted ? session.tooLarge.reason : error;
  } finally {
    signals.dispose();
  }
  return catalog;
}

/**
 * A fresh signal for each request, aborted when the caller's is. The SDK adds
 * an abort listener per request and never removes it, so handing it the
 * caller's signal for a thousand pages would pile up a thousand listeners.
 */
class RequestSignals {
  private current?: AbortController;
  private readonly abort = (): void => this.current?.abort(this.parent.reason);

  constructor(private readonly parent: AbortSignal) {
    parent.addEventListener('abort', this.abort);
  }

  next(): AbortSignal {
    this.current = new AbortController();
    if (this.parent.aborted) this.current.abort(this.parent.reason);
    return this.current.signal;
  }

  dispose(): void {
    this.parent.removeEventListener('abort', this.abort);
  }
}

async function listAll(
  session: UpstreamSession,
  kind: ItemKind,
  options: ReadOptions,
  signals: RequestSignals,
): Promise<{ definitions: Definition[]; truncated: boolean; skipped: UpstreamCatalog['skipped'] }> {
  const spec = LISTS[kind];
  const limits = options.limits ?? CATALOG_LIMITS;
  const definitions: Definition[] = [];
  const skipped: UpstreamCatalog['skipped'] = [];
  const keys = new Set<string>();
  const cursors = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < limits.maxPages; page++) {
    let result: z.infer<typeof pageSchema>;
    try {
      result = await session.client.request(listRequest(kind, cursor), pageSchema, {
        timeout: options.timeoutMs,
        signal: signals.next(),
      });
    } catch (error) {
      // Older servers advertise `resources` without implementing templates: nothing to list.
      if (page === 0 && error instanceof McpError && error.code === (ErrorCode.MethodNotFound as number)) {
        return { definitions, truncated: false, skipped };
      }
      throw error;
    }
    const listed = (result as Record<string, unknown>)[spec.resultKey];
    if (!Array.isArray(listed))
      throw new UpstreamError('protocol', `the upstream answered a list without ${spec.resultKey}`);
    for (const raw of listed as unknown[]) {
      if (definitions.length >= limits.maxItems) return { definitions, truncated: true, skipped };
      if (!isRecord(raw) || !spec.schema.safeParse(raw).success) {
        skipped.push({ kind, key: isRecord(raw) ? itemKeyOf(kind, raw) : '', reason: 'not a valid definition' });
        continue;
      }
      const key = itemKeyOf(kind, raw);
      if (keys.has(key)) {
        skipped.push({ kind, key, reason: 'listed more than once' });
        continue;
      }
      keys.add(key);
      definitions.push(raw);
    }
    const next = result.nextCursor;
    // An empty cursor is read as the end: following it would ask for the first page again.
    if (next === undefined || next === null || next === '') return { definitions, truncated: false, skipped };
    if (cursors.has(next)) return { definitions, truncated: true, skipped };
    cursors.add(next);
    cursor = next;
  }
  return { definitions, truncated: true, skipped };
}

function listRequest(kind: ItemKind, cursor: string | undefined): ClientRequest {
  const params = cursor === undefined ? undefined : { cursor };
  switch (kind) {
    case 'tool':
      return { method: 'tools/list', params };
    case 'prompt':
      return { method: 'prompts/list', params };
    case 'resource':
      return { method: 'resources/list', params };
    case 'resource_template':
      return { method: 'resources/templates/list', params };
  }
}

function isRecord(value: unknown): value is Definition {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
