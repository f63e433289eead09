import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer, type RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { PortHold } from './loopback';
import { readJson } from './read-json';

export interface FixtureTool {
  name: string;
  title?: string;
  description: string;
  /** Called with the `userName` argument. */
  reply: (userName: string) => string;
}

export const GREET_TOOLS: FixtureTool[] = [
  { name: 'echoHai', title: 'Say hello', description: 'Greets a user by name', reply: (u) => `Hello, ${u}!` },
];
export const BYE_TOOLS: FixtureTool[] = [
  { name: 'echoBye', title: 'Say goodbye', description: 'Says goodbye to a user by name', reply: (u) => `Bye, ${u}!` },
];

interface Session {
  server: McpServer;
  transport: StreamableHTTPServerTransport;
  tools: Map<string, RegisteredTool>;
}

/**
 * A real MCP server (SDK `McpServer` over Streamable HTTP) on a loopback port,
 * whose tool list a test can change and which a test can take down (`refuse()`)
 * and restart on the same port.
 */
export class TestUpstream {
  private server?: http.Server;
  private readonly portHold = new PortHold();
  private readonly sessions = new Map<string, Session>();
  private portNumber: number;
  private tools: FixtureTool[];
  private accepted = 0;
  private listsServed = 0;

  private constructor(
    readonly name: string,
    tools: FixtureTool[],
    port: number,
  ) {
    this.tools = tools;
    this.portNumber = port;
  }

  static async start(name: string, tools: FixtureTool[], port = 0): Promise<TestUpstream> {
    const upstream = new TestUpstream(name, tools, port);
    await upstream.listen();
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${this.portNumber}/mcp`;
  }

  /** Sessions clients have open here (a DELETE or a closed transport ends one). */
  get openSessions(): number {
    return this.sessions.size;
  }

  get port(): number {
    return this.portNumber;
  }

  /** TCP connections accepted since start: a client that keeps its connections alive opens few. */
  get connectionsAccepted(): number {
    return this.accepted;
  }

  /** `tools/list` requests answered since start. */
  get toolListsServed(): number {
    return this.listsServed;
  }

  /** Sends every connected session `notifications/tools/list_changed`, whether or not anything changed. */
  announceToolsChanged(): void {
    for (const session of this.sessions.values()) session.server.sendToolListChanged();
  }

  /** Replaces the tool list; connected sessions get `notifications/tools/list_changed`. */
  setTools(tools: FixtureTool[]): void {
    this.tools = tools;
    for (const session of this.sessions.values()) {
      for (const registered of session.tools.values()) registered.remove();
      session.tools.clear();
      this.registerTools(session);
    }
  }

  /** Ends every session, closes every connection and lets go of the port. */
  async stop(): Promise<void> {
    await this.close();
    this.portHold.release();
  }

  /**
   * Stops as `stop()` does, but keeps the port (`holdPort`) until `restart()`: connections to it are refused, as to
   * a stopped server.
   */
  async refuse(): Promise<void> {
    await this.close();
    await this.portHold.hold(this.portNumber);
  }

  /** Listens again on the same port, after `refuse()`. */
  async restart(): Promise<void> {
    await this.listen();
    this.portHold.release();
  }

  private async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const session of this.sessions.values()) await session.transport.close().catch(() => undefined);
    this.sessions.clear();
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async listen(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, '127.0.0.1', () => resolve());
    });
    this.portNumber = (server.address() as AddressInfo).port;
    server.on('connection', () => this.accepted++);
    this.server = server;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    if ((body as { method?: unknown } | undefined)?.method === 'tools/list') this.listsServed++;
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? this.sessions.get(sessionId) : undefined;
    if (existing) {
      await existing.transport.handleRequest(req, res, body);
      return;
    }
    if (typeof sessionId === 'string') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
      return;
    }
    const session = this.newSession();
    await session.server.connect(session.transport);
    await session.transport.handleRequest(req, res, body);
  }

  private newSession(): Session {
    const server = new McpServer(
      { name: this.name, version: '1.0.0' },
      { capabilities: { tools: { listChanged: true } } },
    );
    const session: Session = {
      server,
      tools: new Map(),
      transport: new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          this.sessions.set(id, session);
        },
      }),
    };
    session.transport.onclose = () => {
      if (session.transport.sessionId) this.sessions.delete(session.transport.sessionId);
    };
    this.registerTools(session);
    return session;
  }

  private registerTools(session: Session): void {
    for (const tool of this.tools) {
      const registered = session.server.registerTool(
        tool.name,
        {
          title: tool.title,
          description: tool.description,
          inputSchema: { userName: z.string().describe('Who to address') },
        },
        ({ userName }) => ({ content: [{ type: 'text', text: tool.reply(userName) }] }),
      );
      session.tools.set(tool.name, registered);
    }
  }
}
