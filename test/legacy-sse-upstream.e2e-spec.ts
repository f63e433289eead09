import * as http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { z } from 'zod';
import { loadConfig } from '../src/config/config';
import { type ListenHandlers, openListenSession } from '../src/discovery/listen-session';
import type { UpstreamTarget } from '../src/registry/server.schema';
import { UpstreamConnector } from '../src/upstream/upstream-connector';
import { UrlGuard } from '../src/upstream/url-guard';
import { UpstreamProbe } from '../src/upstream-health/upstream-probe';
import { sleep, waitUntil } from './support/eventually';
import { listenOnLoopback, type LoopbackListener } from './support/loopback';
import { upstreamTarget } from './support/upstream-target';

/** An upstream on the deprecated HTTP+SSE transport (GET /sse for the stream, POST /messages): one server per stream. */
class LegacySseUpstream {
  readonly servers: McpServer[] = [];
  private readonly transports = new Map<string, SSEServerTransport>();
  private readonly http = http.createServer((req, res) => void this.serve(req, res));
  private listener?: LoopbackListener;

  async start(): Promise<string> {
    this.listener = await listenOnLoopback(this.http);
    return `${this.listener.url}/sse`;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.close()));
    await this.listener?.stop();
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res);
      this.transports.set(transport.sessionId, transport);
      const server = new McpServer(
        { name: 'legacy', version: '1.0.0' },
        { capabilities: { tools: { listChanged: true } } },
      );
      server.registerTool('hello', { inputSchema: { name: z.string() } }, ({ name }) => ({
        content: [{ type: 'text', text: `hello ${name}` }],
      }));
      this.servers.push(server);
      await server.connect(transport);
      return;
    }
    const transport = this.transports.get(url.searchParams.get('sessionId') ?? '');
    if (req.method === 'POST' && url.pathname === '/messages' && transport) {
      await transport.handlePostMessage(req, res);
      return;
    }
    res.writeHead(404).end();
  }
}

describe('an upstream on the deprecated HTTP+SSE transport', () => {
  const config = loadConfig({ UPSTREAM_ALLOWED_HOSTS: 'loopback' });
  const guard = new UrlGuard(config.upstream);
  const connector = new UpstreamConnector(config, guard);
  let upstream: LegacySseUpstream;
  let target: UpstreamTarget;

  beforeEach(async () => {
    upstream = new LegacySseUpstream();
    target = upstreamTarget(await upstream.start(), { transport: 'sse' });
  });

  afterEach(() => upstream.stop());

  it('is probed healthy', async () => {
    const probe = new UpstreamProbe(connector, guard);
    expect(await probe.run(target, { timeoutMs: 5_000 })).toMatchObject({ ok: true, latencyMs: expect.any(Number) });
  });

  it('is watched: its list_changed is heard, its ping answered, and closing reports no drop', async () => {
    const seen = { notifications: [] as string[], drops: [] as unknown[] };
    const handlers: ListenHandlers = {
      notified: (method) => seen.notifications.push(method),
      dropped: (error) => seen.drops.push(error),
    };
    const session = await openListenSession(connector, guard, target, handlers);
    try {
      await expect(session.ping(5_000)).resolves.toBeUndefined();
      upstream.servers[0]!.sendToolListChanged();
      await waitUntil(() => seen.notifications.length > 0, 'the notification was heard');
      expect(seen.notifications).toEqual(['notifications/tools/list_changed']);
    } finally {
      await session.close();
    }
    await sleep(100);
    expect(seen.drops).toEqual([]);
  });
});
