'use strict';
// A minimal upstream MCP server (SDK McpServer, stateless Streamable HTTP) to
// put behind the gateway. Used by greet-server.js and bye-server.js.
const http = require('node:http');
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { z } = require('zod');

/**
 * @param {{ name: string, port: number, tool: { name: string, title: string, description: string, reply: (userName: string) => string } }} options
 */
function startExampleServer({ name, port, tool }) {
  const server = http.createServer(async (req, res) => {
    if (req.url !== '/mcp' || req.method !== 'POST') {
      res.writeHead(req.url === '/mcp' ? 405 : 404, { allow: 'POST' }).end();
      return;
    }
    // Stateless: a fresh server and transport per request, as the SDK recommends for simple servers.
    const mcp = new McpServer({ name, version: '1.0.0' });
    mcp.registerTool(
      tool.name,
      { title: tool.title, description: tool.description, inputSchema: { userName: z.string() } },
      ({ userName }) => ({ content: [{ type: 'text', text: tool.reply(userName) }] }),
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    try {
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    } catch (error) {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    }
  });
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`${name} MCP server on http://127.0.0.1:${server.address().port}/mcp\n`);
  });
  process.on('SIGINT', () => server.close(() => process.exit(0)));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
  return server;
}

function portFromArgs(fallback) {
  const index = process.argv.indexOf('--port');
  const port = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('usage: node <server>.js [--port N]\n');
    process.exit(2);
  }
  return port;
}

module.exports = { startExampleServer, portFromArgs };
