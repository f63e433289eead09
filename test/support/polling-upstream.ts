import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { type EventStore, StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { listenOnLoopback, type LoopbackListener } from './loopback';
import { readJson } from './read-json';

/** What the upstream saw of one call of `poll` or `pollForever`. */
export interface PollCall {
  label: string;
  /** The handler's AbortSignal fired (the upstream heard `notifications/cancelled`), with this reason. */
  abortReason?: string;
}

/** Every event of every stream, in the order stored; replayed after the id a client resumes from. */
class MemoryEventStore implements EventStore {
  private readonly events: { id: string; streamId: string; message: JSONRPCMessage }[] = [];

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}.${this.events.length}`;
    this.events.push({ id, streamId, message });
    return Promise.resolve(id);
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const at = this.events.findIndex((event) => event.id === lastEventId);
    if (at < 0) throw new Error(`no event ${lastEventId}`);
    const { streamId } = this.events[at]!;
    for (const event of this.events.slice(at + 1)) {
      if (event.streamId === streamId) await send(event.id, event.message);
    }
    return streamId;
  }
}

/**
 * A real MCP server (SDK `McpServer` over Streamable HTTP, with an event store) that answers long work the
 * 2025-11-25 way, "SSE polling": it closes a call's event stream early (`closeSSEStream`) and expects the client to
 * resume it by GET with Last-Event-ID, after the `retry` it names. `poll` sends a progress notification (when asked
 * for progress), closes the stream, sends another and answers; `pollForever` closes the stream and answers only once
 * cancelled; `cutShort` is answered by the fixture itself with a stream that ends early without any event id.
 * `stall` and `breakOff` are the fixture's own too. A `stall` stream, and every stream resumed from it, ends at once
 * and never answers, each with no event at all, or (`fresh`) with a new priming event, under the `retry` the call
 * names. `breakOff` destroys its connection after a priming event (or, `early`, after a notification without an id)
 * and answers on the stream resumed from it, once `drop` GETs resuming it have had their connections destroyed.
 */
export class PollingUpstream {
  readonly calls: PollCall[] = [];
  /** GETs that asked to resume a stream (`Last-Event-ID`; not discovery's listening stream), and those still open. */
  resumptions = 0;
  openResumptions = 0;
  /** The GETs that resumed each `stall` or `breakOff` call, by its label. */
  readonly resumptionsOf = new Map<string, number>();
  /**
   * How the fixture answers the next listening stream (a GET without Last-Event-ID), instead of the SDK: an event
   * with an id (`listen.{n}`), then its connection broken or the stream ended. Taken by the GET it answers.
   */
  nextListen?: 'break' | 'end';
  /** The Last-Event-ID of each GET that resumed one of those streams. */
  readonly listenResumptions: string[] = [];
  private listens = 0;
  private readonly ownCalls = new Map<string, OwnCall>();
  private readonly sessions = new Map<string, StreamableHTTPServerTransport>();
  private readonly server = http.createServer((req, res) => {
    this.handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  private listener!: LoopbackListener;

  private constructor(private readonly retryMs: number) {}

  static async start(retryMs = 10): Promise<PollingUpstream> {
    const upstream = new PollingUpstream(retryMs);
    upstream.listener = await listenOnLoopback(upstream.server);
    return upstream;
  }

  get url(): string {
    return `${this.listener.url}/mcp`;
  }

  call(label: string): PollCall | undefined {
    return this.calls.find((call) => call.label === label);
  }

  async stop(): Promise<void> {
    for (const transport of this.sessions.values()) await transport.close().catch(() => undefined);
    this.sessions.clear();
    await this.listener.stop();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.headers['last-event-id'] !== undefined) {
      this.resumptions++;
      this.openResumptions++;
      res.once('close', () => this.openResumptions--);
    }
    if (req.method === 'GET') {
      const lastEventId = req.headers['last-event-id'];
      if (typeof lastEventId === 'string' && lastEventId.startsWith('listen.')) {
        this.listenResumptions.push(lastEventId);
        return void res.writeHead(200, { 'content-type': 'text/event-stream' }).end(': resumed\n\n');
      }
      const ending = lastEventId === undefined ? this.nextListen : undefined;
      if (ending) {
        this.nextListen = undefined;
        return listenOnce(res, `listen.${++this.listens}`, ending);
      }
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    if (isCallOf(body, 'cutShort')) return cutShort(res, body);
    for (const tool of ['stall', 'breakOff'] as const) {
      if (!isCallOf(body, tool)) continue;
      const call: OwnCall = { tool, id: body.id, ...(body.params.arguments as OwnCallArguments) };
      this.ownCalls.set(call.label, call);
      return answerOwnCall(res, call, 0);
    }
    const resumed = this.ownCallResumedBy(req);
    if (resumed) {
      const gets = (this.resumptionsOf.get(resumed.label) ?? 0) + 1;
      this.resumptionsOf.set(resumed.label, gets);
      // Dropped before any answer, as an upstream restarting would.
      if (gets <= (resumed.drop ?? 0)) return void req.socket.destroy();
      return answerOwnCall(res, resumed, gets);
    }
    const sessionId = req.headers['mcp-session-id'];
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
      eventStore: new MemoryEventStore(),
      retryInterval: this.retryMs,
    });
    transport.onclose = () => {
      if (transport.sessionId) this.sessions.delete(transport.sessionId);
    };
    await this.newServer().connect(transport);
    await transport.handleRequest(req, res, body);
  }

  /** The `stall` or `breakOff` call a GET resumes, from the event id it names (`own.{label}.{n}`). */
  private ownCallResumedBy(req: http.IncomingMessage): OwnCall | undefined {
    const lastEventId = req.headers['last-event-id'];
    if (req.method !== 'GET' || typeof lastEventId !== 'string' || !lastEventId.startsWith('own.')) return undefined;
    return this.ownCalls.get(lastEventId.split('.')[1] ?? '');
  }

  private newServer(): McpServer {
    const server = new McpServer({ name: 'polling', version: '1.0.0' }, { capabilities: { tools: {} } });
    const label = { label: z.string().describe('Names the call, so the test can find it') };
    server.registerTool(
      'poll',
      { description: 'Answers on a resumed stream', inputSchema: label },
      async (args, extra) => {
        this.calls.push({ label: args.label });
        const token = extra._meta?.progressToken;
        const progress = async (done: number): Promise<void> => {
          if (token === undefined) return;
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: done, total: 2 },
          });
        };
        await progress(1);
        extra.closeSSEStream?.();
        await progress(2);
        return { content: [{ type: 'text', text: `polled ${args.label}` }] };
      },
    );
    server.registerTool(
      'pollForever',
      { description: 'Closes its stream and answers only once cancelled', inputSchema: label },
      async (args, extra) => {
        const call: PollCall = { label: args.label };
        this.calls.push(call);
        extra.closeSSEStream?.();
        await new Promise<void>((resolve) => {
          extra.signal.addEventListener(
            'abort',
            () => {
              call.abortReason = String(extra.signal.reason);
              resolve();
            },
            { once: true },
          );
        });
        return { content: [{ type: 'text', text: `cancelled ${args.label}` }] };
      },
    );
    server.registerTool('cutShort', { description: 'Ends its stream early, naming no event id' }, () => ({
      content: [],
    }));
    server.registerTool(
      'stall',
      {
        description: 'Ends its stream, and each resumed one, at once, never answering',
        inputSchema: { ...label, retry: z.number().int().min(0), fresh: z.boolean() },
      },
      () => ({ content: [] }),
    );
    server.registerTool(
      'breakOff',
      {
        description: 'Breaks its connection after a priming event, and answers on the resumed stream',
        inputSchema: { ...label, early: z.boolean(), drop: z.number().int().min(0).optional() },
      },
      () => ({ content: [] }),
    );
    return server;
  }
}

function isCallOf(body: unknown, tool: string): body is { id: string | number; params: { arguments?: unknown } } {
  const message = body as { method?: unknown; params?: { name?: unknown } } | undefined;
  return message?.method === 'tools/call' && message.params?.name === tool;
}

/** What a `stall` or `breakOff` call is given. */
interface OwnCallArguments {
  label: string;
  retry?: number;
  fresh?: boolean;
  early?: boolean;
  /** `breakOff`: how many GETs resuming it are dropped (their connection destroyed, unanswered) before one answers. */
  drop?: number;
}

/** A call of `stall` or `breakOff`, which the fixture answers itself. */
interface OwnCall extends OwnCallArguments {
  tool: 'stall' | 'breakOff';
  id: string | number;
}

/**
 * The stream of a `stall` or `breakOff` call (`resumption` 0) or of a GET that resumes it. `stall`: the first primes
 * with an id and the call's retry, then ends; a resumed one ends with no event at all, or, `fresh`, after a priming
 * event of its own (a new id each time). `breakOff`: the first primes (or, `early`, sends a notification without an
 * id), then its connection is destroyed; a resumed one answers.
 */
function answerOwnCall(res: http.ServerResponse, call: OwnCall, resumption: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const priming = `id: own.${call.label}.${resumption}\nretry: ${call.retry ?? 10}\ndata:\n\n`;
  if (call.tool === 'stall') return void res.end(resumption > 0 && !call.fresh ? ': nothing yet\n\n' : priming);
  if (resumption > 0) {
    const answer = {
      jsonrpc: '2.0',
      id: call.id,
      result: { content: [{ type: 'text', text: `resumed ${call.label}` }] },
    };
    return void res.end(`id: own.${call.label}.${resumption}\ndata: ${JSON.stringify(answer)}\n\n`);
  }
  const notification = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: call.label } };
  const first = call.early ? `data: ${JSON.stringify(notification)}\n\n` : priming;
  // Once the event is out, the connection goes without the end of the chunked body: a broken stream, not an ended one.
  res.write(first, () => res.socket?.destroy());
}

/** A notification without an id, then the end of the stream: nothing to resume from. */
function cutShort(res: http.ServerResponse, body: { id: string | number }): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const notification = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: body.id } };
  res.end(`event: message\ndata: ${JSON.stringify(notification)}\n\n`);
}

/** A listening stream of one event, with the id given, then broken (its connection destroyed) or ended. */
function listenOnce(res: http.ServerResponse, id: string, ending: 'break' | 'end'): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const notification = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: id } };
  const event = `id: ${id}\ndata: ${JSON.stringify(notification)}\n\n`;
  if (ending === 'end') return void res.end(event);
  res.write(event, () => res.socket?.destroy());
}
