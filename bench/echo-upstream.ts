/**
 * The upstream of `npm run bench`, in a process of its own: SDK `McpServer`s over Streamable HTTP on one
 * loopback port.
 *
 *   /mcp                   one `echo` tool (the server every tools/call goes to)
 *   /catalog/{n}/mcp       `--catalog-tools` tools each, for n in 0 … `--catalog-servers`-1 (discovery reads
 *                          them once; they make the aggregate endpoint's tools/list large)
 *
 * Sessions are stateful, as the SDK's own example servers keep them; answers are the SDK's default (SSE),
 * which is what a gateway in front of an SDK server relays. Prints `{"port":…}` on stdout once listening.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { readJson } from '../test/support/read-json';

const CATALOG_PATH = /^\/catalog\/(\d+)\/mcp$/;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'catalog-servers': { type: 'string', default: '100' },
    'catalog-tools': { type: 'string', default: '50' },
  },
});
const catalogServers = Number(values['catalog-servers']);
const catalogTools = Number(values['catalog-tools']);

const transports = new Map<string, StreamableHTTPServerTransport>();

function echoServer(): McpServer {
  const server = new McpServer({ name: 'bench-echo', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Returns its text', inputSchema: { text: z.string().describe('What to return') } },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

function catalogServer(index: number): McpServer {
  const server = new McpServer({ name: `bench-catalog-${index}`, version: '1.0.0' });
  for (let tool = 0; tool < catalogTools; tool++) {
    server.registerTool(
      `tool_${tool}`,
      {
        title: `Tool ${tool} of server ${index}`,
        description: `Looks up record ${tool} of catalog server ${index}. Returns JSON.`,
        inputSchema: {
          id: z.string().describe('The record id'),
          limit: z.number().int().min(1).max(100).optional().describe('Page size'),
        },
        annotations: { readOnlyHint: true },
      },
      ({ id }) => ({ content: [{ type: 'text', text: id }] }),
    );
  }
  return server;
}

function serverFor(path: string): McpServer | undefined {
  if (path === '/mcp') return echoServer();
  const match = CATALOG_PATH.exec(path);
  const index = Number(match?.[1]);
  return match && index < catalogServers ? catalogServer(index) : undefined;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?')[0] ?? '';
  const body = req.method === 'POST' ? await readJson(req) : undefined;
  const sessionId = req.headers['mcp-session-id'];
  if (typeof sessionId === 'string') {
    const transport = transports.get(sessionId);
    if (!transport) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
      return;
    }
    await transport.handleRequest(req, res, body);
    return;
  }
  const server = serverFor(path);
  if (!server) {
    res.writeHead(404).end();
    return;
  }
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => void transports.set(id, transport),
  });
  transport.onclose = () => {
    if (transport.sessionId) transports.delete(transport.sessionId);
  };
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}

const httpServer = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) res.writeHead(500).end();
  });
});
httpServer.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (httpServer.address() as AddressInfo).port })}\n`);
});
process.once('SIGTERM', () => {
  httpServer.closeAllConnections();
  httpServer.close(() => process.exit(0));
});
