import * as http from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  LoggingMessageNotificationSchema,
  ReadResourceRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import request from 'supertest';
import { eventually, sleep, waitUntil } from './support/eventually';
import { type GuardedUpstream, guardUpstream } from './support/guarded-upstream';
import { listenOnLoopback, type LoopbackListener } from './support/loopback';
import { connectClient } from './support/mcp-client';
import { statelessMcpListener } from './support/stateless-mcp';

const DOC = 'test://doc/1';
const NO_ARGUMENTS = { type: 'object' as const, properties: {} };
const TOOLS: Tool[] = [
  { name: 'linked', description: 'Links a document and embeds it', inputSchema: NO_ARGUMENTS },
  { name: 'chatty', description: 'Logs at debug, info and error, then answers', inputSchema: NO_ARGUMENTS },
  { name: 'params', description: 'Answers with the params it was called with', inputSchema: NO_ARGUMENTS },
  {
    name: 'task_only',
    description: 'May only be called as a task',
    inputSchema: NO_ARGUMENTS,
    execution: { taskSupport: 'required' },
  },
  {
    name: 'task_maybe',
    description: 'May be called as a task',
    inputSchema: NO_ARGUMENTS,
    execution: { taskSupport: 'optional' },
  },
];

/**
 * A stateless SDK upstream with tools, a prompt and a resource, that logs, and offers no completions: what `/mcp`
 * has to present as one server of its own, with the gateway's names for everything, resource URIs included.
 */
class ProtocolUpstream {
  tools: Tool[] = TOOLS;
  private listener!: LoopbackListener;

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<ProtocolUpstream> {
    const upstream: ProtocolUpstream = new ProtocolUpstream(
      http.createServer(statelessMcpListener(() => upstream.serverFor())),
    );
    upstream.listener = await listenOnLoopback(upstream.server);
    return upstream;
  }

  get url(): string {
    return `${this.listener.url}/mcp`;
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }

  private serverFor(): Server {
    const server = new Server(
      { name: 'protocol-upstream', version: '1.0.0' },
      { capabilities: { tools: {}, prompts: {}, resources: {}, logging: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: this.tools }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      switch (request.params.name) {
        case 'linked':
          return {
            content: [
              { type: 'resource_link', uri: DOC, name: 'doc' },
              { type: 'resource', resource: { uri: DOC, mimeType: 'text/plain', text: 'one' } },
              { type: 'text', text: 'see above' },
            ],
          };
        case 'chatty':
          for (const level of ['debug', 'info', 'error'] as const) {
            await extra.sendNotification({ method: 'notifications/message', params: { level, data: level } });
          }
          return { content: [{ type: 'text', text: 'said it all' }] };
        default:
          return { content: [{ type: 'text', text: JSON.stringify(request.params) }] };
      }
    });
    server.setRequestHandler(ListPromptsRequestSchema, () => ({
      prompts: [{ name: 'cite', description: 'Cites the document', arguments: [{ name: 'topic' }] }],
    }));
    server.setRequestHandler(GetPromptRequestSchema, () => ({
      messages: [
        { role: 'user', content: { type: 'resource', resource: { uri: DOC, mimeType: 'text/plain', text: 'one' } } },
      ],
    }));
    server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: [{ uri: DOC, name: 'doc' }] }));
    server.setRequestHandler(ReadResourceRequestSchema, (request) => ({
      contents: [{ uri: request.params.uri, mimeType: 'text/plain', text: 'one' }],
    }));
    return server;
  }
}

describe('/mcp as one MCP server: names, logging, completions and tasks as the spec has them', () => {
  let deployment: GuardedUpstream<ProtocolUpstream>;
  let token: string;
  let slug: string;
  const connect = async () => connectClient(`${deployment.gw.url}/mcp`, token);

  beforeAll(async () => {
    deployment = await guardUpstream(await ProtocolUpstream.start(), { slug: 'protocol' });
    slug = deployment.slug;
    token = await deployment.issuer.token({ roles: ['Gateway.Admin'] });
    const { client } = await connect();
    try {
      await eventually(async () => {
        expect((await client.listTools()).tools.map((tool) => tool.name)).toContain(`${slug}__linked`);
      });
    } finally {
      await client.close();
    }
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  /** POSTs one JSON-RPC message on the session, taking JSON or events. */
  function post(session: string, message: Record<string, unknown>): Promise<Response> {
    return fetch(`${deployment.gw.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': session,
      },
      body: JSON.stringify({ jsonrpc: '2.0', ...message }),
    });
  }

  it('names the resources a tool or prompt answers with by the URIs /mcp reads them under', async () => {
    const { client } = await connect();
    try {
      const here = `mcpgw://${slug}/${DOC}`;
      const linked = await client.callTool({ name: `${slug}__linked`, arguments: {} });
      expect(linked.content).toEqual([
        { type: 'resource_link', uri: here, name: 'doc' },
        { type: 'resource', resource: { uri: here, mimeType: 'text/plain', text: 'one' } },
        { type: 'text', text: 'see above' },
      ]);
      const read = await client.readResource({ uri: here });
      expect(read.contents).toEqual([{ uri: here, mimeType: 'text/plain', text: 'one' }]);
      const prompt = await client.getPrompt({ name: `${slug}__cite`, arguments: { topic: 'x' } });
      expect(prompt.messages[0]!.content).toEqual({
        type: 'resource',
        resource: { uri: here, mimeType: 'text/plain', text: 'one' },
      });
    } finally {
      await client.close();
    }
  });

  it('declares logging, and relays the upstream log messages at or above the level the client set', async () => {
    const { client, transport } = await connect();
    try {
      expect(client.getServerCapabilities()?.logging).toEqual({});
      const heard: string[] = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (note) => void heard.push(note.params.level));
      await client.callTool({ name: `${slug}__chatty`, arguments: {} });
      expect(heard).toEqual(['debug', 'info', 'error']);
      heard.length = 0;
      await client.setLoggingLevel('info');
      await client.callTool({ name: `${slug}__chatty`, arguments: {} });
      expect(heard).toEqual(['info', 'error']);
      const wrong = await post(transport.sessionId!, { id: 9, method: 'logging/setLevel', params: { level: 'loud' } });
      expect(await wrong.json()).toMatchObject({ id: 9, error: { code: -32602 } });
    } finally {
      await client.close();
    }
  });

  it('completes nothing, rather than failing, for an upstream that offers no completions', async () => {
    const { client } = await connect();
    try {
      expect(client.getServerCapabilities()?.completions).toEqual({});
      const completed = await client.complete({
        ref: { type: 'ref/prompt', name: `${slug}__cite` },
        argument: { name: 'topic', value: 'a' },
      });
      expect(completed.completion.values).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('offers no tool that must run as a task, and serves a task-augmented call as an ordinary one', async () => {
    const { client, transport } = await connect();
    try {
      const tools = (await client.listTools()).tools.filter((tool) => tool.name.startsWith(`${slug}__task`));
      expect(tools.map((tool) => [tool.name, tool.execution])).toEqual([[`${slug}__task_maybe`, {}]]);
      const called = await post(transport.sessionId!, {
        id: 3,
        method: 'tools/call',
        params: { name: `${slug}__params`, arguments: {}, task: { ttl: 60_000 } },
      });
      const text = await called.text();
      expect(text).toContain('"result"');
      expect(text).not.toContain('ttl');
    } finally {
      await client.close();
    }
  });

  it('refuses a list cursor it never handed out', async () => {
    const { client, transport } = await connect();
    try {
      for (const method of ['tools/list', 'prompts/list', 'resources/list']) {
        const listed = await post(transport.sessionId!, { id: 4, method, params: { cursor: 'page-2' } });
        expect(await listed.json()).toMatchObject({ id: 4, error: { code: -32602 } });
      }
    } finally {
      await client.close();
    }
  });

  it('tells a session that the lists changed on one of its event streams, not on each of them', async () => {
    const { client, transport } = await connect();
    const streams = [new AbortController(), new AbortController()];
    try {
      const heard = ['', ''];
      for (const [index, controller] of streams.entries()) {
        const opened = await fetch(`${deployment.gw.url}/mcp`, {
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'text/event-stream',
            'mcp-session-id': transport.sessionId!,
          },
          signal: controller.signal,
        });
        expect(opened.status).toBe(200);
        void (async () => {
          for await (const chunk of opened.body!) heard[index] += Buffer.from(chunk as Uint8Array).toString('utf8');
        })().catch(() => undefined);
      }
      deployment.upstream.tools = [...TOOLS, { name: 'added', description: 'New', inputSchema: NO_ARGUMENTS }];
      await request(deployment.gw.url).post(`/api/v1/servers/${deployment.serverId}/refresh`).expect(200);
      await waitUntil(() => heard[1]!.includes('notifications/tools/list_changed'), 'the newest stream heard it');
      // Both streams were written in the same turn before: had the first heard it, it would have by now.
      await sleep(200);
      expect(heard[0]).not.toContain('list_changed');
    } finally {
      deployment.upstream.tools = TOOLS;
      for (const controller of streams) controller.abort();
      await client.close();
    }
  });
});
