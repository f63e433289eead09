import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { listenOnLoopback, type LoopbackListener } from './loopback';
import { readJson } from './read-json';

/** What the upstream saw of one call of `slow` or `hang`. */
export interface SlowCall {
  tool: 'slow' | 'hang';
  label: string;
  startedAt: number;
  /** When the handler's AbortSignal fired (the upstream heard `notifications/cancelled`). */
  abortedAt?: number;
  abortReason?: string;
}

/** One HTTP request the upstream received. */
export interface UpstreamRequest {
  httpMethod: string;
  /** The `Mcp-Session-Id` it carried (none on initialize). */
  sessionId?: string;
  /** The JSON-RPC methods of a POST body. */
  rpcMethods: string[];
}

/**
 * A real MCP server (SDK `McpServer` over Streamable HTTP) with tools that
 * take their time: `slow` waits until its request is cancelled (recording
 * when its AbortSignal fires) or released by the test; `hang` never answers
 * at all, cancelled or not; `echoHai` answers at once.
 */
export class SlowUpstream {
  readonly calls: SlowCall[] = [];
  readonly requests: UpstreamRequest[] = [];
  /** HTTP responses (answers to POSTs, event streams) the upstream has not finished yet. */
  openResponses = 0;
  private readonly sessions = new Map<string, StreamableHTTPServerTransport>();
  private readonly pending = new Set<() => void>();
  private readonly server = http.createServer((req, res) => {
    this.handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  private listener!: LoopbackListener;

  private constructor() {}

  static async start(): Promise<SlowUpstream> {
    const upstream = new SlowUpstream();
    upstream.listener = await listenOnLoopback(upstream.server);
    return upstream;
  }

  get url(): string {
    return `${this.listener.url}/mcp`;
  }

  /** The call of `label`, once the upstream has started it. */
  call(label: string): SlowCall | undefined {
    return this.calls.find((call) => call.label === label);
  }

  /** Lets every waiting `slow` call finish normally and every `hang` call end (without an answer). */
  releaseAll(): void {
    for (const release of this.pending) release();
    this.pending.clear();
  }

  /** Ends every session, as a restart would, while staying on the same port: old session ids get 404. */
  async forgetSessions(): Promise<void> {
    for (const transport of this.sessions.values()) await transport.close().catch(() => undefined);
    this.sessions.clear();
  }

  async stop(): Promise<void> {
    this.releaseAll();
    await this.forgetSessions();
    await this.listener.stop();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    this.openResponses++;
    res.once('close', () => this.openResponses--);
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    const sessionId = req.headers['mcp-session-id'];
    this.requests.push({
      httpMethod: req.method ?? 'GET',
      sessionId: typeof sessionId === 'string' ? sessionId : undefined,
      rpcMethods: (Array.isArray(body) ? body : body === undefined ? [] : [body]).map((message: unknown) => {
        const method = (message as { method?: unknown } | null)?.method;
        return typeof method === 'string' ? method : 'response';
      }),
    });
    const existing = typeof sessionId === 'string' ? this.sessions.get(sessionId) : undefined;
    if (existing) return existing.handleRequest(req, res, body);
    if (typeof sessionId === 'string') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void this.sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) this.sessions.delete(transport.sessionId);
    };
    await this.newServer().connect(transport);
    await transport.handleRequest(req, res, body);
  }

  private newServer(): McpServer {
    const server = new McpServer({ name: 'slow', version: '1.0.0' }, { capabilities: { tools: {} } });
    const label = { label: z.string().describe('Names the call, so the test can find it') };
    server.registerTool('slow', { description: 'Waits until cancelled', inputSchema: label }, async (args, extra) => {
      const call = this.record('slow', args.label);
      const released = await new Promise<boolean>((resolve) => {
        const release = (): void => resolve(true);
        this.pending.add(release);
        const onAbort = (): void => {
          call.abortedAt = Date.now();
          call.abortReason = String(extra.signal.reason);
          this.pending.delete(release);
          resolve(false);
        };
        if (extra.signal.aborted) onAbort();
        else extra.signal.addEventListener('abort', onAbort, { once: true });
      });
      return { content: [{ type: 'text', text: released ? `released ${args.label}` : `cancelled ${args.label}` }] };
    });
    server.registerTool('hang', { description: 'Never answers', inputSchema: label }, async (args) => {
      this.record('hang', args.label);
      await new Promise<void>((resolve) => this.pending.add(resolve));
      // Released only when the fixture stops; by then nobody is waiting for this answer.
      return { content: [] };
    });
    server.registerTool(
      'echoHai',
      { description: 'Greets a user by name', inputSchema: { userName: z.string() } },
      ({ userName }) => ({ content: [{ type: 'text', text: `Hello, ${userName}!` }] }),
    );
    return server;
  }

  private record(tool: SlowCall['tool'], label: string): SlowCall {
    const call: SlowCall = { tool, label, startedAt: Date.now() };
    this.calls.push(call);
    return call;
  }
}
