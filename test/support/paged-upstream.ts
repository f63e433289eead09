import * as http from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  ErrorCode,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import { listenOnLoopback, type LoopbackListener } from './loopback';
import { statelessMcpListener } from './stateless-mcp';

type Entry = Record<string, unknown>;

/** What a paged upstream lists; a kind left out is not advertised at all. */
export interface PagedCatalog {
  tools?: Entry[];
  prompts?: Entry[];
  resources?: Entry[];
  resourceTemplates?: Entry[];
  /** Entries per page (default 2). */
  pageSize?: number;
  /** Answer resources/templates/list with "method not found" although resources are advertised. */
  noTemplatesMethod?: boolean;
  /** Hand out this cursor forever instead of advancing. */
  stuckCursor?: string;
  instructions?: string;
}

/** `n` tools named `tool-000`, `tool-001`, ... with a trivial input schema. */
export function numberedTools(n: number, prefix = 'tool'): Entry[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `${prefix}-${String(i).padStart(3, '0')}`,
    description: `Tool number ${i}`,
    inputSchema: { type: 'object', properties: {} },
  }));
}

/**
 * A low-level SDK `Server` whose list methods page through `catalog()` with
 * `nextCursor` (the cursor is the next offset). Every request it answers is
 * recorded in `requests` as `method cursor?`.
 */
export function createPagedServer(name: string, catalog: () => PagedCatalog, requests: string[] = []): Server {
  const current = catalog();
  const capabilities: ServerCapabilities = {};
  if (current.tools) capabilities.tools = {};
  if (current.prompts) capabilities.prompts = {};
  if (current.resources || current.resourceTemplates) capabilities.resources = {};
  const server = new Server(
    { name, version: '2.0.0', title: `${name} (paged)` },
    {
      capabilities,
      instructions: current.instructions,
    },
  );
  const page = (method: string, entries: Entry[] | undefined, cursor: string | undefined, key: string) => {
    requests.push(cursor === undefined ? method : `${method} ${cursor}`);
    const { pageSize = 2, stuckCursor } = catalog();
    const offset = cursor === undefined ? 0 : Number(cursor);
    if (!Number.isInteger(offset) || offset < 0) {
      if (cursor !== stuckCursor) throw new McpError(ErrorCode.InvalidParams, 'bad cursor');
    }
    const start = cursor === stuckCursor ? 0 : offset;
    const all = entries ?? [];
    const end = start + pageSize;
    const nextCursor = stuckCursor ?? (end < all.length ? String(end) : undefined);
    return { [key]: all.slice(start, end), ...(nextCursor === undefined ? {} : { nextCursor }) };
  };
  if (capabilities.tools) {
    server.setRequestHandler(ListToolsRequestSchema, (request) =>
      page('tools/list', catalog().tools, request.params?.cursor, 'tools'),
    );
  }
  if (capabilities.prompts) {
    server.setRequestHandler(ListPromptsRequestSchema, (request) =>
      page('prompts/list', catalog().prompts, request.params?.cursor, 'prompts'),
    );
  }
  if (capabilities.resources) {
    server.setRequestHandler(ListResourcesRequestSchema, (request) =>
      page('resources/list', catalog().resources, request.params?.cursor, 'resources'),
    );
    if (!current.noTemplatesMethod) {
      server.setRequestHandler(ListResourceTemplatesRequestSchema, (request) =>
        page('resources/templates/list', catalog().resourceTemplates, request.params?.cursor, 'resourceTemplates'),
      );
    }
  }
  return server;
}

/** `createPagedServer` over stateless Streamable HTTP on a loopback port. */
export class PagedUpstream {
  private constructor(
    private readonly listener: LoopbackListener,
    readonly name: string,
    /** Every list request answered, as `method cursor?`. */
    readonly requests: string[],
  ) {}

  static async start(name: string, catalog: PagedCatalog): Promise<PagedUpstream> {
    const requests: string[] = [];
    const server = http.createServer(
      statelessMcpListener(() => createPagedServer(name, () => catalog, requests), { enableJsonResponse: true }),
    );
    return new PagedUpstream(await listenOnLoopback(server), name, requests);
  }

  get url(): string {
    return `${this.listener.url}/mcp`;
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }
}
