import { MAX_EVENT_BYTES } from '../../src/mcp/sse';
import { MAX_TEXT_BYTES } from '../../src/mcp/upstream-answer';
import * as http from 'node:http';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/** The session id the scripted upstream gives every initialize. */
export const SCRIPTED_SESSION = 'scripted-session-1';

/**
 * An upstream that speaks just enough Streamable HTTP, scripted per test: initialize answered as JSON with a
 * session id, notifications taken (202), answers to its own requests recorded, pings answered over SSE (with a
 * result or an error) or not at all, the GET event stream opened, refused (405) or failed (500), DELETE recorded.
 */
export class ScriptedUpstream {
  readonly received: { method: string; headers: http.IncomingHttpHeaders; body?: Record<string, unknown> }[] = [];
  readonly streams: http.ServerResponse[] = [];
  getStatus = 200;
  /** `endless`, `endless-event`: a JSON answer, or an event, that goes on past the gateway's limit and never ends. */
  pingAnswer: 'result' | 'method-not-found' | 'error' | 'none' | 'endless' | 'endless-event' = 'result';
  private readonly server = http.createServer((req, res) => this.serve(req, res));
  private listener?: LoopbackListener;

  async start(): Promise<string> {
    this.listener = await listenOnLoopback(this.server);
    return `${this.listener.url}/mcp`;
  }

  async stop(): Promise<void> {
    await this.listener?.stop();
  }

  /** Writes one SSE event to every open stream. */
  send(data: string): void {
    for (const stream of this.streams) stream.write(`event: message\ndata: ${data}\n\n`);
  }

  bodies(method: string): Record<string, unknown>[] {
    return this.received.filter((entry) => entry.method === method && entry.body).map((entry) => entry.body!);
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method === 'GET') {
      this.received.push({ method: 'GET', headers: req.headers });
      if (this.getStatus !== 200) return void res.writeHead(this.getStatus).end();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      this.streams.push(res);
      res.on('close', () => this.streams.splice(this.streams.indexOf(res), 1));
      return;
    }
    if (req.method === 'DELETE') {
      this.received.push({ method: 'DELETE', headers: req.headers });
      return void res.writeHead(200).end();
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      this.received.push({ method: 'POST', headers: req.headers, body });
      if (body.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': SCRIPTED_SESSION });
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: body.id,
            result: {
              protocolVersion: '2025-06-18',
              capabilities: { tools: { listChanged: true } },
              serverInfo: { name: 'scripted', version: '1.0.0' },
            },
          }),
        );
      } else if (body.method === 'ping') {
        if (this.pingAnswer === 'none') return;
        if (this.pingAnswer === 'endless') return endlessAnswer(res, 'application/json', body.id);
        if (this.pingAnswer === 'endless-event') return endlessAnswer(res, 'text/event-stream', body.id);
        const answer =
          this.pingAnswer === 'result'
            ? { result: {} }
            : {
                error:
                  this.pingAnswer === 'error'
                    ? { code: -32603, message: 'broken' }
                    : { code: -32601, message: 'no ping' },
              };
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: body.id, ...answer })}\n\n`);
      } else {
        res.writeHead(202).end();
      }
    });
  }
}

const LIMIT = Math.max(MAX_TEXT_BYTES, MAX_EVENT_BYTES);

/** An answer to request `id`, as JSON or as one event, that goes on past 64 MiB and then stalls, never ending. */
function endlessAnswer(res: http.ServerResponse, type: 'application/json' | 'text/event-stream', id: unknown): void {
  res.writeHead(200, { 'content-type': type });
  const start = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"padding":"`;
  res.write(type === 'text/event-stream' ? `event: message\ndata: ${start}` : start);
  writePast(res, Buffer.alloc(1024 * 1024, 'x'), LIMIT);
}

/** Writes `chunk` again and again, as fast as `res` drains, until more than `limit` bytes went out; then stalls. */
export function writePast(res: http.ServerResponse, chunk: Buffer, limit: number): void {
  let sent = 0;
  const pump = (): void => {
    while (sent <= limit && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) return;
    }
  };
  res.on('drain', pump);
  pump();
}
