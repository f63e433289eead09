import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  StreamableHTTPServerTransport,
  type EventId,
  type EventStore,
  type StreamId,
} from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  LoggingLevelSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type ElicitRequestFormParams,
  type GetPromptResult,
  type JSONRPCMessage,
  type LoggingLevel,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplate,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/*
 * The fixture the MCP conformance suite (@modelcontextprotocol/conformance 0.1.16, active server
 * scenarios) expects behind the URL it tests: every tool, resource, template and prompt its scenarios
 * call, with the names, arguments and contents their checks read. Tools, resources and prompts are
 * declared as plain tables (exported, so tests can check each one is really served) and served by the
 * SDK's low-level `Server`: `McpServer` would rewrite `json_schema_2020_12_tool`'s input schema to
 * draft-07, which is exactly what the suite checks a server does not do.
 */

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

interface ToolFixture {
  definition: Tool;
  call: (args: Record<string, unknown>, extra: Extra, session: Session) => Promise<CallToolResult>;
}

interface PromptFixture {
  definition: Prompt;
  get: (args: Record<string, string>) => GetPromptResult;
}

/** A 1×1 PNG (one orange-red pixel). */
export const FIXTURE_PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGOQz38NAAIqAXp4ksuCAAAAAElFTkSuQmCC';
/** A WAV file: 8 kHz, mono, 8-bit PCM, eight samples of silence. */
export const FIXTURE_WAV_BASE64 = 'UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==';

const JSON_SCHEMA_2020_12 = 'https://json-schema.org/draft/2020-12/schema';
const NO_ARGUMENTS: Tool['inputSchema'] = { type: 'object', properties: {} };
const RESOURCE_NOT_FOUND = -32002;
const STEP_DELAY_MS = 50;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] });
const toolError = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }], isError: true });

function stringArgument(args: Record<string, unknown>, name: string): string | undefined {
  const value = args[name];
  return typeof value === 'string' ? value : undefined;
}

async function elicit(extra: Extra, params: ElicitRequestFormParams): Promise<CallToolResult> {
  const result = await extra.sendRequest({ method: 'elicitation/create', params }, ElicitResultSchema);
  return text(`Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`);
}

export const CONFORMANCE_TOOLS: ToolFixture[] = [
  {
    definition: { name: 'test_simple_text', description: 'Returns one text block', inputSchema: NO_ARGUMENTS },
    call: () => Promise.resolve(text('This is a simple text response for testing.')),
  },
  {
    definition: { name: 'test_image_content', description: 'Returns one PNG image', inputSchema: NO_ARGUMENTS },
    call: () => Promise.resolve({ content: [{ type: 'image', data: FIXTURE_PNG_BASE64, mimeType: 'image/png' }] }),
  },
  {
    definition: { name: 'test_audio_content', description: 'Returns one WAV clip', inputSchema: NO_ARGUMENTS },
    call: () => Promise.resolve({ content: [{ type: 'audio', data: FIXTURE_WAV_BASE64, mimeType: 'audio/wav' }] }),
  },
  {
    definition: {
      name: 'test_embedded_resource',
      description: 'Returns one embedded text resource',
      inputSchema: NO_ARGUMENTS,
    },
    call: () =>
      Promise.resolve({
        content: [
          {
            type: 'resource',
            resource: {
              uri: 'test://embedded-resource',
              mimeType: 'text/plain',
              text: 'This is an embedded resource content.',
            },
          },
        ],
      }),
  },
  {
    definition: {
      name: 'test_multiple_content_types',
      description: 'Returns text, an image and an embedded resource',
      inputSchema: NO_ARGUMENTS,
    },
    call: () =>
      Promise.resolve({
        content: [
          { type: 'text', text: 'Multiple content types test:' },
          { type: 'image', data: FIXTURE_PNG_BASE64, mimeType: 'image/png' },
          {
            type: 'resource',
            resource: {
              uri: 'test://mixed-content-resource',
              mimeType: 'application/json',
              text: JSON.stringify({ test: 'data', value: 123 }),
            },
          },
        ],
      }),
  },
  {
    definition: {
      name: 'test_tool_with_logging',
      description: 'Sends three info log messages while it runs',
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, extra, session) => {
      const messages = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];
      for (const [index, message] of messages.entries()) {
        if (index > 0) await delay(STEP_DELAY_MS);
        await session.log(extra, 'info', message);
      }
      return text('Tool with logging executed successfully');
    },
  },
  {
    definition: {
      name: 'test_tool_with_progress',
      description: 'Reports progress 0, 50 and 100 of 100 when given a progress token',
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (progress > 0) await delay(STEP_DELAY_MS);
        if (progressToken === undefined) continue;
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress, total: 100, message: `Completed ${progress} of 100` },
        });
      }
      return text('Tool with progress executed successfully');
    },
  },
  {
    definition: { name: 'test_error_handling', description: 'Always fails', inputSchema: NO_ARGUMENTS },
    call: () => Promise.resolve(toolError('This tool intentionally returns an error for testing')),
  },
  {
    definition: {
      name: 'test_sampling',
      description: 'Asks the client to sample an LLM with the given prompt',
      inputSchema: {
        type: 'object',
        properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } },
        required: ['prompt'],
      },
    },
    call: async (args, extra) => {
      const prompt = stringArgument(args, 'prompt');
      if (prompt === undefined) return toolError('Argument "prompt" (string) is required');
      const result = await extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 },
        },
        CreateMessageResultSchema,
      );
      const reply = result.content.type === 'text' ? result.content.text : `[${result.content.type}]`;
      return text(`LLM response: ${reply}`);
    },
  },
  {
    definition: {
      name: 'test_elicitation',
      description: 'Asks the client for a username and an email address',
      inputSchema: {
        type: 'object',
        properties: { message: { type: 'string', description: 'The message to show the user' } },
        required: ['message'],
      },
    },
    call: async (args, extra) => {
      const message = stringArgument(args, 'message');
      if (message === undefined) return toolError('Argument "message" (string) is required');
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            message,
            requestedSchema: {
              type: 'object',
              properties: {
                username: { type: 'string', description: "User's response" },
                email: { type: 'string', description: "User's email address" },
              },
              required: ['username', 'email'],
            },
          },
        },
        ElicitResultSchema,
      );
      return text(`User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`);
    },
  },
  {
    definition: {
      name: 'test_elicitation_sep1034_defaults',
      description: 'Elicits a form whose fields of every primitive type carry defaults (SEP-1034)',
      inputSchema: NO_ARGUMENTS,
    },
    call: (_args, extra) =>
      elicit(extra, {
        message: 'Please review and update the form fields with defaults',
        requestedSchema: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'User name', default: 'John Doe' },
            age: { type: 'integer', description: 'User age', default: 30 },
            score: { type: 'number', description: 'User score', default: 95.5 },
            status: {
              type: 'string',
              description: 'User status',
              enum: ['active', 'inactive', 'pending'],
              default: 'active',
            },
            verified: { type: 'boolean', description: 'Verification status', default: true },
          },
        },
      }),
  },
  {
    definition: {
      name: 'test_elicitation_sep1330_enums',
      description: 'Elicits a form with the five enum variants of SEP-1330',
      inputSchema: NO_ARGUMENTS,
    },
    call: (_args, extra) =>
      elicit(extra, {
        message: 'Please select options from the enum fields',
        requestedSchema: {
          type: 'object',
          properties: {
            untitledSingle: { type: 'string', description: 'Pick one', enum: ['option1', 'option2', 'option3'] },
            titledSingle: {
              type: 'string',
              description: 'Pick one (titled)',
              oneOf: [
                { const: 'value1', title: 'First Option' },
                { const: 'value2', title: 'Second Option' },
                { const: 'value3', title: 'Third Option' },
              ],
            },
            legacyEnum: {
              type: 'string',
              description: 'Pick one (legacy titles)',
              enum: ['opt1', 'opt2', 'opt3'],
              enumNames: ['Option One', 'Option Two', 'Option Three'],
            },
            untitledMulti: {
              type: 'array',
              description: 'Pick several',
              items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
            },
            titledMulti: {
              type: 'array',
              description: 'Pick several (titled)',
              items: {
                anyOf: [
                  { const: 'value1', title: 'First Choice' },
                  { const: 'value2', title: 'Second Choice' },
                  { const: 'value3', title: 'Third Choice' },
                ],
              },
            },
          },
        },
      }),
  },
  {
    definition: {
      name: 'json_schema_2020_12_tool',
      description: 'Tool with JSON Schema 2020-12 features',
      inputSchema: {
        $schema: JSON_SCHEMA_2020_12,
        type: 'object',
        $defs: {
          address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
        },
        properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
        additionalProperties: false,
      },
    },
    call: (args) => Promise.resolve(text(`JSON Schema 2020-12 tool called with: ${JSON.stringify(args)}`)),
  },
  {
    definition: {
      name: 'test_reconnection',
      description: 'Closes its SSE stream mid-call and answers after the client reconnects (SEP-1699)',
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, extra) => {
      // The SDK only offers closeSSEStream when the client can resume (an event store and protocol
      // ≥ 2025-11-25); without it the answer simply stays on the open stream.
      extra.closeSSEStream?.();
      await delay(2 * STEP_DELAY_MS);
      return text('Reconnection test completed successfully');
    },
  },
];

export const CONFORMANCE_RESOURCES: Array<Resource & { contents: ReadResourceResult['contents'] }> = [
  {
    uri: 'test://static-text',
    name: 'static-text',
    description: 'A static text resource',
    mimeType: 'text/plain',
    contents: [
      { uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' },
    ],
  },
  {
    uri: 'test://static-binary',
    name: 'static-binary',
    description: 'A static binary resource (a PNG image)',
    mimeType: 'image/png',
    contents: [{ uri: 'test://static-binary', mimeType: 'image/png', blob: FIXTURE_PNG_BASE64 }],
  },
  {
    uri: 'test://watched-resource',
    name: 'watched-resource',
    description: 'A resource clients can subscribe to',
    mimeType: 'text/plain',
    contents: [{ uri: 'test://watched-resource', mimeType: 'text/plain', text: 'Watched resource content' }],
  },
];

const TEMPLATE_PATTERN = /^test:\/\/template\/([^/]+)\/data$/;

export const CONFORMANCE_RESOURCE_TEMPLATES: ResourceTemplate[] = [
  {
    uriTemplate: 'test://template/{id}/data',
    name: 'template',
    description: 'Data for an id, substituted into the URI and the content',
    mimeType: 'application/json',
  },
];

export const CONFORMANCE_PROMPTS: PromptFixture[] = [
  {
    definition: { name: 'test_simple_prompt', description: 'A prompt without arguments' },
    get: () => ({
      messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
    }),
  },
  {
    definition: {
      name: 'test_prompt_with_arguments',
      description: 'A prompt with two required arguments',
      arguments: [
        { name: 'arg1', description: 'First test argument', required: true },
        { name: 'arg2', description: 'Second test argument', required: true },
      ],
    },
    get: ({ arg1, arg2 }) => ({
      messages: [
        {
          role: 'user',
          content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` },
        },
      ],
    }),
  },
  {
    definition: {
      name: 'test_prompt_with_embedded_resource',
      description: 'A prompt embedding the resource it is given',
      arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
    },
    get: ({ resourceUri = '' }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'resource',
            resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' },
          },
        },
        { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
      ],
    }),
  },
  {
    definition: { name: 'test_prompt_with_image', description: 'A prompt with an image' },
    get: () => ({
      messages: [
        { role: 'user', content: { type: 'image', data: FIXTURE_PNG_BASE64, mimeType: 'image/png' } },
        { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
      ],
    }),
  },
];

/** Completion candidates per reference (prompt name or template URI) and argument name. */
const COMPLETIONS: Record<string, Record<string, string[]>> = {
  test_prompt_with_arguments: {
    arg1: ['hello', 'help', 'test', 'testValue1'],
    arg2: ['world', 'word', 'test', 'testValue2'],
  },
  'test://template/{id}/data': { id: ['1', '123', '42'] },
};

function readResource(uri: string): ReadResourceResult {
  const resource = CONFORMANCE_RESOURCES.find((candidate) => candidate.uri === uri);
  if (resource) return { contents: resource.contents };
  const id = TEMPLATE_PATTERN.exec(uri)?.[1];
  if (id !== undefined) {
    const data = { id, templateTest: true, data: `Data for ID: ${id}` };
    return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(data) }] };
  }
  throw new McpError(RESOURCE_NOT_FOUND, `Resource not found: ${uri}`, { uri });
}

/**
 * Keeps every SSE event so a client that lost a stream can resume it with `Last-Event-ID`. Event ids
 * are `<stream>_<sequence>`; the sequence orders replay.
 */
class InMemoryEventStore implements EventStore {
  private readonly events = new Map<EventId, { streamId: StreamId; sequence: number; message: JSONRPCMessage }>();
  private sequence = 0;

  storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const sequence = ++this.sequence;
    const eventId = `${streamId}_${sequence}`;
    this.events.set(eventId, { streamId, sequence, message });
    return Promise.resolve(eventId);
  }

  getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return Promise.resolve(this.events.get(eventId)?.streamId);
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const last = this.events.get(lastEventId);
    if (!last) throw new Error(`Unknown event id ${lastEventId}`);
    for (const [eventId, event] of this.events) {
      // Priming events carry no message: nothing to replay.
      if (event.streamId !== last.streamId || event.sequence <= last.sequence) continue;
      if (Object.keys(event.message).length === 0) continue;
      await send(eventId, event.message);
    }
    return last.streamId;
  }
}

const LOCAL_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** DNS-rebinding protection: the Host header, and the Origin header when sent, must name this machine. */
function isLocalRequest(req: http.IncomingMessage): boolean {
  const hostname = (authority: string) => {
    try {
      return new URL(authority).hostname;
    } catch {
      return undefined;
    }
  };
  const host = req.headers.host;
  if (!host || !LOCAL_HOSTNAMES.has(hostname(`http://${host}`) ?? '')) return false;
  const origin = req.headers.origin;
  return origin === undefined || LOCAL_HOSTNAMES.has(hostname(origin) ?? '');
}

class Session {
  readonly server: Server;
  readonly transport: StreamableHTTPServerTransport;
  readonly subscriptions = new Set<string>();
  private logLevel: LoggingLevel = 'debug';

  constructor(eventStore: EventStore, onInitialized: (session: Session) => void) {
    this.server = new Server(
      { name: 'conformance-upstream', version: '1.0.0' },
      {
        capabilities: {
          tools: {},
          resources: { subscribe: true },
          prompts: {},
          logging: {},
          completions: {},
        },
      },
    );
    this.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore,
      retryInterval: 500,
      onsessioninitialized: () => onInitialized(this),
    });
    this.registerHandlers();
  }

  /** Sends a log message on the stream of the request being handled, unless below the session's level. */
  async log(extra: Extra, level: LoggingLevel, data: string): Promise<void> {
    const severity = (value: LoggingLevel) => LoggingLevelSchema.options.indexOf(value);
    if (severity(level) < severity(this.logLevel)) return;
    await extra.sendNotification({ method: 'notifications/message', params: { level, logger: 'conformance', data } });
  }

  private registerHandlers(): void {
    const server = this.server;
    server.setRequestHandler(SetLevelRequestSchema, (request) => {
      this.logLevel = request.params.level;
      return {};
    });

    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: CONFORMANCE_TOOLS.map((tool) => tool.definition),
    }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const tool = CONFORMANCE_TOOLS.find((candidate) => candidate.definition.name === request.params.name);
      if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
      try {
        return await tool.call(request.params.arguments ?? {}, extra, this);
      } catch (error) {
        return toolError(`${tool.definition.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    });

    server.setRequestHandler(ListResourcesRequestSchema, () => ({
      resources: CONFORMANCE_RESOURCES.map(({ contents: _contents, ...resource }) => resource),
    }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
      resourceTemplates: CONFORMANCE_RESOURCE_TEMPLATES,
    }));
    server.setRequestHandler(ReadResourceRequestSchema, (request) => readResource(request.params.uri));
    server.setRequestHandler(SubscribeRequestSchema, (request) => {
      readResource(request.params.uri);
      this.subscriptions.add(request.params.uri);
      return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
      this.subscriptions.delete(request.params.uri);
      return {};
    });

    server.setRequestHandler(ListPromptsRequestSchema, () => ({
      prompts: CONFORMANCE_PROMPTS.map((prompt) => prompt.definition),
    }));
    server.setRequestHandler(GetPromptRequestSchema, (request) => {
      const prompt = CONFORMANCE_PROMPTS.find((candidate) => candidate.definition.name === request.params.name);
      if (!prompt) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`);
      const args = request.params.arguments ?? {};
      const missing = (prompt.definition.arguments ?? []).filter((arg) => arg.required && args[arg.name] === undefined);
      if (missing.length > 0) {
        throw new McpError(ErrorCode.InvalidParams, `Missing arguments: ${missing.map((arg) => arg.name).join(', ')}`);
      }
      return prompt.get(args);
    });

    server.setRequestHandler(CompleteRequestSchema, (request) => {
      const { ref, argument } = request.params;
      const key = ref.type === 'ref/prompt' ? ref.name : ref.uri;
      const candidates = COMPLETIONS[key]?.[argument.name];
      if (!candidates) throw new McpError(ErrorCode.InvalidParams, `No completions for ${key} ${argument.name}`);
      const values = candidates.filter((value) => value.startsWith(argument.value));
      return { completion: { values, total: values.length, hasMore: false } };
    });
  }
}

/**
 * A real MCP server (SDK `Server` over Streamable HTTP, one per session, resumable SSE streams) on a
 * loopback port, serving every fixture the conformance suite's active server scenarios use.
 */
export class ConformanceUpstream {
  private readonly sessions = new Map<string, Session>();
  private readonly eventStore = new InMemoryEventStore();

  private readonly server = http.createServer((req, res) => {
    this.handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  private listener!: LoopbackListener;

  private constructor() {}

  static async start(): Promise<ConformanceUpstream> {
    const upstream = new ConformanceUpstream();
    upstream.listener = await listenOnLoopback(upstream.server);
    return upstream;
  }

  get url(): string {
    return `${this.listener.url}/mcp`;
  }

  async stop(): Promise<void> {
    for (const session of this.sessions.values()) await session.transport.close().catch(() => undefined);
    this.sessions.clear();
    await this.listener.stop();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!isLocalRequest(req)) {
      replyError(res, 403, -32000, 'Forbidden: Host and Origin must be localhost');
      return;
    }
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    let body: unknown;
    if (req.method === 'POST') {
      try {
        body = JSON.parse(await readBody(req)) as unknown;
      } catch {
        replyError(res, 400, ErrorCode.ParseError, 'Parse error: the body is not JSON');
        return;
      }
    }
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = this.sessions.get(sessionId);
      if (!session) {
        replyError(res, 404, -32001, 'Session not found');
        return;
      }
      await session.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST') {
      replyError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      return;
    }
    const session = new Session(this.eventStore, (initialized) => {
      if (initialized.transport.sessionId) this.sessions.set(initialized.transport.sessionId, initialized);
    });
    session.transport.onclose = () => {
      if (session.transport.sessionId) this.sessions.delete(session.transport.sessionId);
    };
    await session.server.connect(session.transport);
    await session.transport.handleRequest(req, res, body);
  }
}

function replyError(res: http.ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
