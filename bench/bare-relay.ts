/**
 * The floor of `npm run bench`: the least a Node process can do to stand between an MCP client and the upstream.
 * It reads each POST, sends it on with the MCP headers over a kept-alive undici pool (as the gateway's relay
 * does), and answers with the upstream's status, content type, session id and bytes. No token, policy, rate
 * limit, audit, metrics, log line or parsing: what it costs per call is what relaying alone costs, measured in
 * the same run as the gateway, so the gateway's figures can be read against it.
 *
 *   node -r ./bench/swc-register.cjs bench/bare-relay.ts --upstream http://127.0.0.1:<port>
 *
 * Prints `{"port":…}` on stdout once listening.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const FORWARDED = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version'] as const;

const { values } = parseArgs({ options: { upstream: { type: 'string' } } });
if (!values.upstream) throw new Error('--upstream is required');
const pool = new Pool(values.upstream, { headersTimeout: 0, bodyTimeout: 0 });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    pool
      .request({ method: 'POST', path: req.url ?? '/', headers, body: Buffer.concat(chunks) })
      .then(async (answer) => {
        const body = Buffer.from(await answer.body.arrayBuffer());
        const out: Record<string, string> = {};
        for (const name of ['content-type', 'mcp-session-id']) {
          const value = answer.headers[name];
          if (typeof value === 'string') out[name] = value;
        }
        res.writeHead(answer.statusCode, out).end(body);
      })
      .catch((error: unknown) => res.writeHead(502).end(String(error)));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
