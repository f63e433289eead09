import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ConformanceUpstream } from './support/conformance-upstream';
import {
  ACTIVE_SCENARIOS,
  BASELINE,
  parseSummary,
  runConformance,
  SCENARIO_PROMPTS,
  SCENARIO_RESOURCES,
  SCENARIO_TEMPLATES,
  SCENARIO_TOOLS,
  SUITE_TIMEOUT_MS,
} from './support/conformance';

interface SseEvent {
  id?: string;
  retry?: number;
  data: string;
}

/** Reads SSE events from a response until `done` accepts one or the stream ends. */
async function readEvents(response: Response, done: (event: SseEvent) => boolean = () => false): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) return events;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event: SseEvent = { data: '' };
        for (const line of buffer.slice(0, end).split('\n')) {
          const [field = '', ...rest] = line.split(':');
          const content = rest.join(':').replace(/^ /, '');
          if (field === 'id') event.id = content;
          if (field === 'retry') event.retry = Number(content);
          if (field === 'data') event.data += content;
        }
        buffer = buffer.slice(end + 2);
        events.push(event);
        if (done(event)) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

describe('ConformanceUpstream fixture', () => {
  let upstream: ConformanceUpstream;

  beforeAll(async () => {
    upstream = await ConformanceUpstream.start();
  });

  afterAll(async () => {
    await upstream.stop();
  });

  it(
    'passes every active scenario of the conformance suite, against the committed baseline',
    async () => {
      const run = await runConformance(upstream.url, '--expected-failures', BASELINE);

      expect({ exitCode: run.exitCode, output: run.output }).toEqual({ exitCode: 0, output: expect.any(String) });
      const summary = parseSummary(run.output);
      expect(summary.map((line) => line.scenario)).toEqual(ACTIVE_SCENARIOS);
      expect(summary.filter((line) => !line.ok || line.failed > 0 || line.passed === 0)).toEqual([]);
      expect(run.output).toMatch(/Baseline check passed/);
    },
    SUITE_TIMEOUT_MS,
  );

  it(
    'passes the pending json-schema-2020-12 scenario (raw 2020-12 input schema, not rewritten)',
    async () => {
      const run = await runConformance(upstream.url, '--scenario', 'json-schema-2020-12');

      expect({ exitCode: run.exitCode, output: run.output }).toEqual({ exitCode: 0, output: expect.any(String) });
      expect(run.output).toMatch(/Passed: 4\/4, 0 failed, 0 warnings/);
    },
    SUITE_TIMEOUT_MS,
  );

  describe('served to an SDK client', () => {
    let client: Client;
    let transport: StreamableHTTPClientTransport;

    beforeEach(async () => {
      client = new Client({ name: 'fixture-test', version: '1.0.0' });
      transport = new StreamableHTTPClientTransport(new URL(upstream.url));
      await client.connect(transport);
    });

    afterEach(async () => {
      await client.close();
    });

    it('lists every tool, resource, template and prompt the scenarios use', async () => {
      const tools = (await client.listTools()).tools.map((tool) => tool.name);
      const resources = (await client.listResources()).resources.map((resource) => resource.uri);
      const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
      const prompts = (await client.listPrompts()).prompts.map((prompt) => prompt.name);

      expect(tools).toEqual(expect.arrayContaining(SCENARIO_TOOLS));
      expect(resources).toEqual(expect.arrayContaining(SCENARIO_RESOURCES));
      expect(templates).toEqual(expect.arrayContaining(SCENARIO_TEMPLATES));
      expect(prompts).toEqual(expect.arrayContaining(SCENARIO_PROMPTS));
    });

    it('answers an unknown tool with a JSON-RPC error, so no scenario passes on a missing tool', async () => {
      await expect(client.callTool({ name: 'test_missing' })).rejects.toThrow(/Unknown tool: test_missing/);
      await expect(client.readResource({ uri: 'test://missing' })).rejects.toThrow(/Resource not found/);
      await expect(client.subscribeResource({ uri: 'test://missing' })).rejects.toThrow(/Resource not found/);
    });

    it('closes the test_reconnection stream mid-call and answers on the resumed stream', async () => {
      const headers = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': transport.sessionId ?? '',
        'mcp-protocol-version': '2025-11-25',
      };
      const call = { jsonrpc: '2.0', id: 'reconnect-1', method: 'tools/call', params: { name: 'test_reconnection' } };
      const posted = await fetch(upstream.url, { method: 'POST', headers, body: JSON.stringify(call) });
      expect(posted.headers.get('content-type')).toMatch(/text\/event-stream/);
      const beforeClose = await readEvents(posted);

      // Only the priming event (an id, the retry delay, no data), then the server closed the stream.
      expect(beforeClose).toEqual([{ id: expect.any(String), retry: 500, data: '' }]);

      const resumed = await fetch(upstream.url, {
        headers: { ...headers, accept: 'text/event-stream', 'last-event-id': beforeClose[0]?.id ?? '' },
      });
      const isAnswer = (event: SseEvent) => event.data.includes('"reconnect-1"');
      const afterResume = await readEvents(resumed, isAnswer);
      const answer = JSON.parse(afterResume.find(isAnswer)?.data ?? '{}');
      expect(answer.result.content).toEqual([{ type: 'text', text: 'Reconnection test completed successfully' }]);
    });
  });
});
