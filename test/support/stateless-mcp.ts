import type * as http from 'node:http';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { readJson } from './read-json';

/**
 * Serves MCP over stateless Streamable HTTP: a new server from `serverFor` and a new transport for each request, as
 * the SDK's stateless example does. `enableJsonResponse` answers a POST with JSON instead of an event stream.
 */
export function statelessMcpListener(
  serverFor: () => Server,
  options: { enableJsonResponse?: boolean } = {},
): http.RequestListener {
  return (req, res) => {
    const mcp = serverFor();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, ...options });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    mcp
      .connect(transport)
      .then(() => (req.method === 'POST' ? readJson(req) : Promise.resolve(undefined)))
      .then((body) => transport.handleRequest(req, res, body))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
  };
}
