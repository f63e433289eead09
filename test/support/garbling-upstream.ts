import * as http from 'node:http';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/**
 * What the upstream writes on its TCP connection for a call of each of its tools, in place of an HTTP answer:
 * `garbled` is not HTTP/1.1 (a header name with a space in it, which Node's HTTP parser refuses), `oversized`
 * is HTTP with a header of 20 KiB, past what the gateway's HTTP client reads (16 KiB, undici's maxHeaderSize).
 */
const CALL_ANSWERS = {
  garbled: 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nbroken header: x\r\ncontent-length: 2\r\n\r\n{}',
  oversized: `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-padding: ${'a'.repeat(20 * 1024)}\r\ncontent-length: 2\r\n\r\n{}`,
} as const;

export type GarblingTool = keyof typeof CALL_ANSWERS;
export const GARBLING_TOOLS = Object.keys(CALL_ANSWERS) as GarblingTool[];

/**
 * An MCP server over a real TCP socket that speaks HTTP and MCP well enough to be registered and listed
 * (initialize, notifications, `tools/list` as JSON; GET refused 405, DELETE taken), and answers a call of one of
 * its tools with the bytes `CALL_ANSWERS` names, written on the socket as they are, which it then closes.
 */
export class GarblingUpstream {
  private readonly server = http.createServer((req, res) => this.serve(req, res));
  private listener?: LoopbackListener;

  static async start(): Promise<GarblingUpstream> {
    const upstream = new GarblingUpstream();
    upstream.listener = await listenOnLoopback(upstream.server);
    return upstream;
  }

  get url(): string {
    if (!this.listener) throw new Error('not started');
    return `${this.listener.url}/mcp`;
  }

  async stop(): Promise<void> {
    await this.listener?.stop();
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method === 'GET') return void res.writeHead(405).end();
    if (req.method !== 'POST') return void res.writeHead(200).end();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        id?: unknown;
        method?: string;
        params?: { name?: string };
      };
      const answer = (result: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result }));
      };
      switch (body.method ?? '') {
        case 'initialize':
          return answer({
            protocolVersion: '2025-06-18',
            capabilities: { tools: {} },
            serverInfo: { name: 'garbling', version: '1.0.0' },
          });
        case 'tools/list':
          return answer({
            tools: GARBLING_TOOLS.map((name) => ({ name, inputSchema: { type: 'object', properties: {} } })),
          });
        case 'tools/call': {
          const written = CALL_ANSWERS[body.params?.name as GarblingTool];
          if (written === undefined) return answer({ content: [], isError: true });
          // Around Node's HTTP server: these bytes are the whole answer on the wire.
          req.socket.end(written);
          return;
        }
        case 'ping':
          return answer({});
        default:
          res.writeHead(202).end();
      }
    });
  }
}
