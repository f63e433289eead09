import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ExampleServer } from './support/example-server';

describe.each([
  ['greet-server.js', 'echoHai', 'Hello, Ada!'],
  ['bye-server.js', 'echoBye', 'Bye, Ada!'],
] as const)('examples/%s', (script, tool, reply) => {
  let server: ExampleServer;

  beforeAll(async () => {
    server = await ExampleServer.start(script);
  });

  afterAll(async () => {
    await server.stop();
  });

  it(`serves ${tool} over Streamable HTTP`, async () => {
    const client = new Client({ name: 'examples-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual([tool]);
      const result = await client.callTool({ name: tool, arguments: { userName: 'Ada' } });
      expect(result.content).toEqual([{ type: 'text', text: reply }]);
    } finally {
      await client.close();
    }
  });
});
