import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { secondHoldOf } from './support/loopback';
import { BYE_TOOLS, GREET_TOOLS, TestUpstream } from './support/upstream';

/** The fixture other tests rely on really is an MCP server that behaves as they assume. */
describe('TestUpstream fixture', () => {
  let upstream: TestUpstream;

  beforeAll(async () => {
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
  });

  afterAll(async () => {
    await upstream.stop();
  });

  it('serves tools over Streamable HTTP, announces list changes, and restarts on the port it kept', async () => {
    const client = new Client({ name: 'fixture-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(upstream.url)));
    const listed = await client.listTools();
    expect(listed.tools.map((tool) => tool.name)).toEqual(['echoHai']);
    const result = await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);

    const changed = new Promise<void>((resolve) =>
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
    );
    upstream.setTools([...GREET_TOOLS, ...BYE_TOOLS]);
    await changed;
    expect((await client.listTools()).tools.map((tool) => tool.name).sort()).toEqual(['echoBye', 'echoHai']);
    await client.close();

    const port = upstream.port;
    await upstream.refuse();
    await expect(fetch(upstream.url, { method: 'POST' })).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
    // Bound all the while, so that no other process takes it: a second hold of it is refused.
    expect(await secondHoldOf(port)).toBe('EADDRNOTAVAIL');
    await upstream.restart();
    expect(upstream.port).toBe(port);
    const again = new Client({ name: 'fixture-test', version: '1.0.0' });
    await again.connect(new StreamableHTTPClientTransport(new URL(upstream.url)));
    expect((await again.listTools()).tools).toHaveLength(2);
    await again.close();
  });
});
