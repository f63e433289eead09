import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createPagedServer, numberedTools, type PagedCatalog } from '../../test/support/paged-upstream';
import type { UpstreamSession } from '../upstream/upstream-connector';
import { readCatalog, type ReadOptions } from './upstream-catalog';

async function sessionWith(catalog: PagedCatalog, requests: string[] = []): Promise<UpstreamSession> {
  const server = createPagedServer('paged', () => catalog, requests);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'spec', version: '1.0.0' });
  await client.connect(clientSide);
  return {
    client,
    protocolVersion: '2025-11-25',
    tooLarge: new AbortController().signal,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

describe('readCatalog', () => {
  const options: ReadOptions = { timeoutMs: 5_000 };
  let session: UpstreamSession | undefined;

  afterEach(async () => {
    await session?.close();
    session = undefined;
  });

  it('reads identity and follows nextCursor to the end of every advertised list', async () => {
    const requests: string[] = [];
    session = await sessionWith(
      {
        tools: numberedTools(5),
        prompts: [{ name: 'p1' }, { name: 'p2' }, { name: 'p3' }],
        resources: [{ uri: 'file:///a', name: 'a' }],
        resourceTemplates: [{ uriTemplate: 'file:///{p}', name: 't' }],
        instructions: 'Be kind',
      },
      requests,
    );
    const catalog = await readCatalog(session, options);
    expect(catalog.serverInfo).toMatchObject({ name: 'paged', version: '2.0.0', title: 'paged (paged)' });
    expect(catalog.protocolVersion).toBe('2025-11-25');
    expect(catalog.instructions).toBe('Be kind');
    expect(catalog.capabilities).toMatchObject({ tools: {}, prompts: {}, resources: {} });
    expect(catalog.definitions.tool.map((tool) => tool.name)).toEqual([
      'tool-000',
      'tool-001',
      'tool-002',
      'tool-003',
      'tool-004',
    ]);
    expect(catalog.definitions.prompt).toHaveLength(3);
    expect(catalog.definitions.resource).toEqual([{ uri: 'file:///a', name: 'a' }]);
    expect(catalog.definitions.resource_template).toHaveLength(1);
    expect(catalog.truncated).toEqual([]);
    expect(requests.filter((line) => line.startsWith('tools/list'))).toEqual([
      'tools/list',
      'tools/list 2',
      'tools/list 4',
    ]);
  });

  it('lists only what the capabilities advertise', async () => {
    const requests: string[] = [];
    session = await sessionWith({ tools: numberedTools(1) }, requests);
    const catalog = await readCatalog(session, options);
    expect(catalog.definitions.prompt).toEqual([]);
    expect(requests).toEqual(['tools/list']);
  });

  it('keeps unknown fields of a definition verbatim', async () => {
    const tool = {
      name: 'rich',
      inputSchema: { type: 'object', properties: { a: { type: 'string', 'x-extra': 1 } } },
      _meta: { vendor: { id: 7 } },
      futureField: ['kept'],
    };
    session = await sessionWith({ tools: [tool] });
    expect((await readCatalog(session, options)).definitions.tool).toEqual([tool]);
  });

  it('skips invalid and repeated items without failing the rest', async () => {
    session = await sessionWith({
      tools: [
        { name: 'ok', inputSchema: { type: 'object' } },
        { name: 'no-schema' },
        { name: 'ok', inputSchema: { type: 'object' }, description: 'again' },
        { name: 'fine', inputSchema: { type: 'object' } },
      ],
      pageSize: 10,
    });
    const catalog = await readCatalog(session, options);
    expect(catalog.definitions.tool.map((tool) => tool.name)).toEqual(['ok', 'fine']);
    expect(catalog.skipped).toEqual([
      { kind: 'tool', key: 'no-schema', reason: 'not a valid definition' },
      { kind: 'tool', key: 'ok', reason: 'listed more than once' },
    ]);
  });

  it('stops at the item limit and says so', async () => {
    session = await sessionWith({ tools: numberedTools(7), pageSize: 3 });
    const catalog = await readCatalog(session, { ...options, limits: { maxItems: 5, maxPages: 100 } });
    expect(catalog.definitions.tool).toHaveLength(5);
    expect(catalog.truncated).toEqual(['tool']);
  });

  it('is not truncated when the last page ends exactly at the limit', async () => {
    session = await sessionWith({ tools: numberedTools(6), pageSize: 3 });
    const catalog = await readCatalog(session, { ...options, limits: { maxItems: 6, maxPages: 100 } });
    expect(catalog.definitions.tool).toHaveLength(6);
    expect(catalog.truncated).toEqual([]);
  });

  it('stops at the page limit and at a cursor handed out twice', async () => {
    session = await sessionWith({ tools: numberedTools(20), pageSize: 1 });
    const paged = await readCatalog(session, { ...options, limits: { maxItems: 100, maxPages: 4 } });
    expect(paged.definitions.tool).toHaveLength(4);
    expect(paged.truncated).toEqual(['tool']);
    await session.close();

    const requests: string[] = [];
    session = await sessionWith({ tools: numberedTools(3), pageSize: 1, stuckCursor: 'again' }, requests);
    const stuck = await readCatalog(session, options);
    expect(stuck.truncated).toEqual(['tool']);
    expect(requests).toEqual(['tools/list', 'tools/list again']);
  });

  it('reads a missing resources/templates/list as no templates', async () => {
    session = await sessionWith({ resources: [{ uri: 'file:///a', name: 'a' }], noTemplatesMethod: true });
    const catalog = await readCatalog(session, options);
    expect(catalog.definitions.resource).toHaveLength(1);
    expect(catalog.definitions.resource_template).toEqual([]);
  });
});
