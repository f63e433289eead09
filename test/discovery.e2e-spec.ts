import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import type { CapabilitiesView } from '../src/discovery/discovery.dto';
import { DiscoveryRepository } from '../src/discovery/discovery.repository';
import { gatewayName, shortHash } from '../src/discovery/gateway-names';
import { ListChangedWatchers, WATCHER_TIMING } from '../src/discovery/list-changed-watchers';
import type { Server } from '../src/generated/prisma/client';
import { RegistryEvents, type RegistryEventType } from '../src/registry/registry-events';
import { createServerRow, deleteServerRows } from './support/discovery-servers';
import { startTestGateway, type TestGateway } from './support/gateway';
import { numberedTools, PagedUpstream } from './support/paged-upstream';
import { SseProxy } from './support/sse-proxy';
import { BYE_TOOLS, type FixtureTool, GREET_TOOLS, TestUpstream } from './support/upstream';

const PROBLEM_JSON = /^application\/problem\+json/;
const FINGERPRINT = /^[0-9a-f]{64}$/;

/** Polls `read` until `until` holds or the deadline passes; then fails showing the last value. */
async function eventually<T>(read: () => T | Promise<T>, until: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (!until(last)) {
    if (Date.now() > deadline) throw new Error(`not met within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await read();
  }
  return last;
}

describe('discovery (services)', () => {
  let gw: TestGateway;
  let prisma: PrismaService;
  let greet: TestUpstream;
  let bye: TestUpstream;
  let flaky: TestUpstream;
  let paged: PagedUpstream;
  let greetProxy: SseProxy;
  const created: string[] = [];
  // Every server of this file carries the tag, so searches see none of other files' servers.
  const tag = `disc-${randomUUID().slice(0, 8)}`;
  // Crafted to equal the gateway name of `a.b` once sanitised: a collision the view must report.
  const crafted = `a_b_${shortHash('a.b')}`;
  const pagedTools = [...numberedTools(25), { name: 'a.b', inputSchema: { type: 'object' } }];
  pagedTools.push({ name: crafted, inputSchema: { type: 'object' } });

  async function register(url: string, overrides: Parameters<typeof createServerRow>[1] = {}): Promise<Server> {
    const server = await createServerRow(prisma, { url, tags: [tag], ...overrides });
    created.push(server.id);
    return server;
  }

  function announce(server: Server, type: RegistryEventType): void {
    gw.gateway.app.get(RegistryEvents).emit({ type, serverId: server.id, slug: server.slug });
  }

  async function capabilities(id: string): Promise<CapabilitiesView> {
    const res = await request(gw.url).get(`/api/v1/servers/${id}/capabilities`).expect(200);
    return res.body as CapabilitiesView;
  }

  async function refresh(id: string, status = 200): Promise<request.Response> {
    return request(gw.url).post(`/api/v1/servers/${id}/refresh`).expect(status);
  }

  function search(kind: 'tools' | 'prompts' | 'resources', query: Record<string, string | number>): request.Test {
    return request(gw.url)
      .get(`/api/v1/discovery/${kind}`)
      .query({ tag, ...query });
  }

  beforeAll(async () => {
    greet = await TestUpstream.start('greet', GREET_TOOLS);
    bye = await TestUpstream.start('bye', BYE_TOOLS);
    flaky = await TestUpstream.start('flaky', GREET_TOOLS);
    paged = await PagedUpstream.start('paged', {
      tools: pagedTools,
      prompts: [{ name: 'summarise', description: 'Summarises a text' }, { name: 'translate' }, { name: 'plan' }],
      resources: Array.from({ length: 5 }, (_, i) => ({ uri: `file:///docs/${i}.md`, name: `doc ${i}` })),
      resourceTemplates: [
        { uriTemplate: 'file:///docs/{name}', name: 'any doc', mimeType: 'text/markdown' },
        { uriTemplate: 'db://rows/{id}', name: 'row' },
        { uriTemplate: 'db://tables/{table}{?limit}', name: 'table' },
      ],
      pageSize: 4,
      instructions: 'Page through me',
    });
    greetProxy = await SseProxy.start(greet.url);
    gw = await startTestGateway('services', { UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    prisma = gw.gateway.app.get(PrismaService);
  });

  afterAll(async () => {
    if (prisma) await deleteServerRows(prisma, created);
    await gw?.close();
    await greetProxy?.stop();
    await Promise.all([greet?.stop(), bye?.stop(), flaky?.stop(), paged?.stop()]);
  });

  describe('sync', () => {
    let greetServer: Server;
    let byeServer: Server;

    beforeAll(async () => {
      greetServer = await register(greetProxy.url);
      byeServer = await register(bye.url);
      announce(greetServer, 'created');
      announce(byeServer, 'created');
    });

    it('syncs a registered server: identity, capabilities, and tools with gateway names and fingerprints', async () => {
      const view = await eventually(
        () => capabilities(greetServer.id),
        (body) => body.syncedAt !== null,
      );
      expect(view).toMatchObject({
        server: { id: greetServer.id, slug: greetServer.slug, name: greetServer.name, status: 'active' },
        serverInfo: { name: 'greet', version: '1.0.0' },
        protocolVersion: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
        capabilities: { tools: { listChanged: true } },
        instructions: null,
        lastError: null,
        prompts: [],
        resources: [],
        resourceTemplates: [],
        // The first sync is the baseline: nothing is reported as added.
        changes: [],
        nameCollisions: [],
      });
      expect(view.tools).toEqual([
        {
          name: 'echoHai',
          gatewayName: `${greetServer.slug}__echoHai`,
          title: 'Say hello',
          description: 'Greets a user by name',
          fingerprint: expect.stringMatching(FINGERPRINT),
          definition: expect.objectContaining({
            name: 'echoHai',
            inputSchema: expect.objectContaining({ properties: { userName: expect.any(Object) } }),
          }),
        },
      ]);
    });

    it('finds tools across servers, by text, server and tag', async () => {
      await eventually(
        () => capabilities(byeServer.id),
        (body) => body.syncedAt !== null,
      );
      const all = await search('tools', {}).expect(200);
      expect(all.body.nextCursor).toBeNull();
      expect(all.body.items.map((item: { gatewayName: string }) => item.gatewayName).sort()).toEqual(
        [`${greetServer.slug}__echoHai`, `${byeServer.slug}__echoBye`].sort(),
      );
      const hello = await search('tools', { q: 'HAI' }).expect(200);
      expect(hello.body.items).toEqual([
        {
          server: { id: greetServer.id, slug: greetServer.slug, name: greetServer.name },
          name: 'echoHai',
          gatewayName: `${greetServer.slug}__echoHai`,
          title: 'Say hello',
          description: 'Greets a user by name',
          fingerprint: expect.stringMatching(FINGERPRINT),
        },
      ]);
      const byDescription = await search('tools', { q: 'goodbye to' }).expect(200);
      expect(byDescription.body.items.map((item: { name: string }) => item.name)).toEqual(['echoBye']);
      const bySlug = await search('tools', { server: byeServer.slug }).expect(200);
      expect(bySlug.body.items.map((item: { name: string }) => item.name)).toEqual(['echoBye']);
      const byId = await search('tools', { server: greetServer.id.toUpperCase() }).expect(200);
      expect(byId.body.items.map((item: { name: string }) => item.name)).toEqual(['echoHai']);
      const otherTag = await search('tools', { tag: `${tag}-none` }).expect(200);
      expect(otherTag.body.items).toEqual([]);
    });

    it('re-syncs on list_changed without being asked, and records the changes with both fingerprints', async () => {
      const watchers = gw.gateway.app.get(ListChangedWatchers);
      // Listening means the upstream's event stream is open, not only that the session exists.
      await eventually(
        () => ({ state: watchers.stateOf(greetServer.id), streams: greetProxy.openStreams }),
        (seen) => seen.state === 'connected' && seen.streams > 0,
      );
      const before = await capabilities(greetServer.id);
      expect(before.watch).toBe('connected');
      const oldFingerprint = before.tools[0]?.fingerprint;

      const louder: FixtureTool[] = GREET_TOOLS.map((tool) => ({ ...tool, description: 'Greets a user loudly' }));
      greet.setTools([...louder, ...BYE_TOOLS]);

      const after = await eventually(
        () => capabilities(greetServer.id),
        (body) => body.tools.length === 2 && body.changes.length === 2,
      );
      const hai = after.tools.find((tool: { name: string }) => tool.name === 'echoHai');
      const echoBye = after.tools.find((tool: { name: string }) => tool.name === 'echoBye');
      expect(hai?.description).toBe('Greets a user loudly');
      expect(hai?.fingerprint).not.toBe(oldFingerprint);
      expect(after.changes).toEqual(
        expect.arrayContaining([
          {
            kind: 'tool',
            name: 'echoHai',
            change: 'changed',
            beforeFingerprint: oldFingerprint,
            afterFingerprint: hai?.fingerprint,
            detectedAt: expect.any(String),
          },
          {
            kind: 'tool',
            name: 'echoBye',
            change: 'added',
            beforeFingerprint: null,
            afterFingerprint: echoBye?.fingerprint,
            detectedAt: expect.any(String),
          },
        ]),
      );

      greet.setTools(GREET_TOOLS);
      const restored = await eventually(
        () => capabilities(greetServer.id),
        (body) => body.tools.length === 1 && body.changes.length === 4,
      );
      expect(restored.tools[0]?.fingerprint).toBe(oldFingerprint);
      expect(restored.changes.slice(0, 2).map((change: { change: string; name: string }) => change.change)).toEqual(
        expect.arrayContaining(['changed', 'removed']),
      );
    });

    it('closes the watcher when the server is disabled, and leaves disabled servers out of search', async () => {
      const watchers = gw.gateway.app.get(ListChangedWatchers);
      const server = await register(bye.url);
      await refresh(server.id);
      await eventually(
        () => watchers.stateOf(server.id),
        (state) => state === 'connected',
      );
      expect((await search('tools', { server: server.id }).expect(200)).body.items).toHaveLength(1);

      await prisma.server.update({ where: { id: server.id }, data: { status: 'disabled' } });
      announce(server, 'updated');
      await eventually(
        () => watchers.stateOf(server.id),
        (state) => state === 'off',
      );
      expect((await search('tools', { server: server.id }).expect(200)).body.items).toEqual([]);
      const refused = await refresh(server.id, 409);
      expect(refused.body).toMatchObject({ code: 'conflict' });
      // What was synced stays readable.
      expect((await capabilities(server.id)).tools).toHaveLength(1);
    });

    it('reconnects a dropped watcher and re-syncs what changed while it was away', async () => {
      const watchers = gw.gateway.app.get(ListChangedWatchers);
      const phoenix = await TestUpstream.start('phoenix', GREET_TOOLS);
      try {
        const server = await register(phoenix.url);
        await refresh(server.id);
        await eventually(
          () => watchers.stateOf(server.id),
          (state) => state === 'connected',
        );
        await phoenix.refuse();
        await eventually(
          () => watchers.stateOf(server.id),
          (state) => state === 'reconnecting',
        );
        phoenix.setTools(BYE_TOOLS);
        await phoenix.restart();
        const view = await eventually(
          () => capabilities(server.id),
          (body) => body.tools.map((tool) => tool.name).join() === 'echoBye',
          15_000,
        );
        expect(view.watch).toBe('connected');
        expect(view.changes.map((change) => `${change.change} ${change.name}`).sort()).toEqual([
          'added echoBye',
          'removed echoHai',
        ]);
      } finally {
        await phoenix.stop();
      }
    });

    it('syncs deprecated servers too', async () => {
      const server = await register(bye.url, { status: 'deprecated' });
      const res = await refresh(server.id);
      expect(res.body.tools.map((tool: { name: string }) => tool.name)).toEqual(['echoBye']);
    });

    it('closes the watcher of a deleted server', async () => {
      const watchers = gw.gateway.app.get(ListChangedWatchers);
      const server = await register(bye.url);
      await refresh(server.id);
      await eventually(
        () => watchers.stateOf(server.id),
        (state) => state === 'connected',
      );
      await prisma.server.delete({ where: { id: server.id } });
      announce(server, 'deleted');
      expect(watchers.stateOf(server.id)).toBe('off');
      await request(gw.url).get(`/api/v1/servers/${server.id}/capabilities`).expect(404);
    });

    it('syncs an upstream that announces changes without pause, during the storm and at most every 2 s', async () => {
      const watchers = gw.gateway.app.get(ListChangedWatchers);
      const stormy = await TestUpstream.start('stormy', GREET_TOOLS);
      let storm: NodeJS.Timeout | undefined;
      try {
        const server = await register(stormy.url);
        await refresh(server.id);
        await eventually(
          () => watchers.stateOf(server.id),
          (state) => state === 'connected',
        );
        // Faster than the 150 ms grouping window: a wait restarted by each announcement never ended while they came.
        const before = stormy.toolListsServed;
        const started = performance.now();
        storm = setInterval(() => stormy.announceToolsChanged(), 50);
        stormy.setTools(BYE_TOOLS);
        await eventually(
          () => capabilities(server.id),
          (body) => body.tools.map((tool) => tool.name).join() === 'echoBye',
        );
        // Slower than the window: each announcement was a sync of its own, back to back.
        clearInterval(storm);
        storm = setInterval(() => stormy.announceToolsChanged(), 300);
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        clearInterval(storm);
        const elapsed = performance.now() - started;
        const syncs = stormy.toolListsServed - before;
        expect(syncs).toBeGreaterThanOrEqual(1);
        expect(syncs).toBeLessThanOrEqual(Math.ceil(elapsed / WATCHER_TIMING.minSyncIntervalMs) + 1);
      } finally {
        clearInterval(storm);
        await stormy.stop();
      }
    });
  });

  describe('refresh', () => {
    it('answers 502 naming the reason when the upstream is down, and keeps the last good items', async () => {
      const server = await register(flaky.url);
      const first = await refresh(server.id);
      expect(first.body.tools.map((tool: { name: string }) => tool.name)).toEqual(['echoHai']);
      const syncedAt = first.body.syncedAt as string;

      await flaky.refuse();
      try {
        const failed = await refresh(server.id, 502);
        expect(failed.headers['content-type']).toMatch(PROBLEM_JSON);
        expect(failed.body).toMatchObject({ status: 502, code: 'upstream_error' });
        expect(failed.body.detail).toMatch(/\(connection_refused\)/);
        expect(failed.body.errorId).toBeUndefined();

        const kept = await capabilities(server.id);
        expect(kept.tools.map((tool: { name: string }) => tool.name)).toEqual(['echoHai']);
        expect(kept.syncedAt).toBe(syncedAt);
        expect(kept.lastError).toEqual({
          kind: 'connection_refused',
          message: expect.any(String),
          at: expect.any(String),
        });
        expect((await search('tools', { server: server.id }).expect(200)).body.items).toHaveLength(1);
      } finally {
        await flaky.restart();
      }
      const recovered = await refresh(server.id);
      expect(recovered.body.lastError).toBeNull();
      expect(recovered.body.changes).toEqual([]);
    });

    it('answers 404 problem+json for a ref that names no server, and 400 for one that cannot, on both routes', async () => {
      for (const [ref, status, code] of [
        [randomUUID(), 404, 'not_found'],
        ['not-a-uuid', 404, 'not_found'],
        ['1', 404, 'not_found'],
        ["x'%20OR%201=1", 400, 'validation_error'],
        ['%00', 400, 'validation_error'],
      ] as const) {
        const view = await request(gw.url).get(`/api/v1/servers/${ref}/capabilities`).expect(status);
        expect(view.headers['content-type']).toMatch(PROBLEM_JSON);
        expect(view.body.code).toBe(code);
        const refreshed = await request(gw.url).post(`/api/v1/servers/${ref}/refresh`).expect(status);
        expect(refreshed.body.code).toBe(code);
      }
    });

    it('records a URL the policy refuses as refused_url', async () => {
      const server = await register('http://169.254.169.254/mcp');
      const failed = await refresh(server.id, 502);
      expect(failed.body.detail).toMatch(/\(refused_url\)/);
      expect((await capabilities(server.id)).lastError?.kind).toBe('refused_url');
    });
  });

  describe('a paged upstream', () => {
    let server: Server;

    beforeAll(async () => {
      server = await register(paged.url);
      await refresh(server.id);
    });

    it('follows nextCursor to the end of every list', async () => {
      const view = await capabilities(server.id);
      expect(view.serverInfo).toMatchObject({ name: 'paged', version: '2.0.0', title: 'paged (paged)' });
      expect(view.instructions).toBe('Page through me');
      expect(view.tools.map((tool: { name: string }) => tool.name)).toEqual(pagedTools.map((tool) => tool.name));
      expect(view.prompts).toHaveLength(3);
      expect(view.resources).toHaveLength(5);
      expect(view.resourceTemplates).toHaveLength(3);
      expect(paged.requests).toEqual(expect.arrayContaining(['tools/list', 'tools/list 4', 'tools/list 24']));
      expect(paged.requests).not.toContain('tools/list 28');
    });

    it('names resources and templates under mcpgw://{slug}/ and reports name collisions', async () => {
      const view = await capabilities(server.id);
      expect(view.resources[0]).toMatchObject({
        uri: 'file:///docs/0.md',
        name: 'doc 0',
        gatewayName: `mcpgw://${server.slug}/file:///docs/0.md`,
      });
      expect(view.resourceTemplates[0]).toMatchObject({
        uriTemplate: 'file:///docs/{name}',
        gatewayName: `mcpgw://${server.slug}/file:///docs/{name}`,
        mimeType: 'text/markdown',
      });
      const hashed = gatewayName(server.slug, 'a.b');
      expect(view.tools.find((tool) => tool.name === 'a.b')?.gatewayName).toBe(hashed);
      expect(view.nameCollisions).toEqual([{ kind: 'tool', gatewayName: hashed, names: [crafted, 'a.b'].sort() }]);
    });

    it('pages search results with an opaque cursor, in a stable order, without gaps or repeats', async () => {
      const seen: { name: string; gatewayName: string }[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: Record<string, string | number> = { server: server.slug, limit: 10 };
        if (cursor) query.cursor = cursor;
        const res = await search('tools', query).expect(200);
        seen.push(...res.body.items);
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      expect(pages).toBe(3);
      expect(seen.map((item) => item.name).sort()).toEqual(pagedTools.map((tool) => tool.name).sort());
      const gatewayNames = seen.map((item) => item.gatewayName);
      expect(gatewayNames).toEqual([...gatewayNames].sort());
      const first = await search('tools', { server: server.slug, limit: 10 }).expect(200);
      expect(first.body.items).toEqual(seen.slice(0, 10));
    });

    it('searches prompts and resources (with templates)', async () => {
      const prompts = await search('prompts', { server: server.id, q: 'summar' }).expect(200);
      expect(prompts.body.items).toEqual([
        expect.objectContaining({ name: 'summarise', gatewayName: `${server.slug}__summarise` }),
      ]);
      const resources = await search('resources', { server: server.id, limit: 100 }).expect(200);
      expect(resources.body.items).toHaveLength(8);
      expect(resources.body.items).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ kind: 'resource', uri: 'file:///docs/3.md', name: 'doc 3' }),
          expect.objectContaining({ kind: 'resource_template', uriTemplate: 'db://rows/{id}', name: 'row' }),
        ]),
      );
      const byName = await search('resources', { server: server.id, q: 'DOC 4' }).expect(200);
      expect(byName.body.items.map((item: { uri: string }) => item.uri)).toEqual(['file:///docs/4.md']);
    });

    it('matches LIKE wildcards and backslashes literally', async () => {
      const underscore = await search('tools', { server: server.id, q: '_' }).expect(200);
      expect(underscore.body.items.map((item: { name: string }) => item.name)).toEqual([crafted]);
      for (const q of ['%', '%_\\', '\\', "'; DROP TABLE servers; --"]) {
        const res = await search('tools', { server: server.id, q }).expect(200);
        expect(res.body.items).toEqual([]);
      }
    });
  });

  describe('bad input', () => {
    it.each([
      ['a malformed cursor', { cursor: 'not a cursor!' }, 'cursor'],
      ['a forged cursor', { cursor: Buffer.from('["a","b","tool","c"]').toString('base64url') }, 'cursor'],
      ['limit 0', { limit: '0' }, 'limit'],
      ['limit 1000', { limit: '1000' }, 'limit'],
      ['limit abc', { limit: 'abc' }, 'limit'],
      ['limit 1.5', { limit: '1.5' }, 'limit'],
      ['an unknown field', { colour: 'red' }, ''],
      ['a control character in q', { q: 'a\u0000b' }, 'q'],
      // Name, title and description are newline-separated in server_items.search_text.
      ['a newline in q', { q: 'a\nb' }, 'q'],
      ['a q that is too long', { q: 'x'.repeat(201) }, 'q'],
      ['a server that is neither id nor slug', { server: 'Bad_Slug!' }, 'server'],
    ])('answers %s with 400 problem+json', async (_what, query, field) => {
      for (const kind of ['tools', 'prompts', 'resources'] as const) {
        const res = await search(kind, query).expect(400);
        expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
        expect(res.body).toMatchObject({ status: 400, code: 'validation_error' });
        if (field) expect(res.body.errors.map((error: { field: string }) => error.field)).toContain(field);
      }
    });

    it('answers a repeated parameter with 400', async () => {
      const res = await request(gw.url).get('/api/v1/discovery/tools?q=a&q=b').expect(400);
      expect(res.body.code).toBe('validation_error');
    });
  });

  it('describes its routes in the OpenAPI document', async () => {
    const res = await request(gw.url).get('/docs-json').expect(200);
    const paths = res.body.paths as Record<string, Record<string, { parameters?: { name: string }[] }>>;
    expect(Object.keys(paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/servers/{ref}/capabilities',
        '/api/v1/servers/{ref}/refresh',
        '/api/v1/discovery/tools',
        '/api/v1/discovery/prompts',
        '/api/v1/discovery/resources',
      ]),
    );
    expect(paths['/api/v1/discovery/tools']?.get?.parameters?.map((p) => p.name)).toEqual(
      expect.arrayContaining(['q', 'server', 'tag', 'cursor', 'limit']),
    );
  });
});

describe('discovery sweep (services)', () => {
  let gw: TestGateway;
  let prisma: PrismaService;
  let upstream: TestUpstream;
  const mine = new Set<string>();

  beforeAll(async () => {
    upstream = await TestUpstream.start('swept', BYE_TOOLS);
    // The sweep sees every server of the shared database; narrow it (through the real query) to this test's.
    const list = DiscoveryRepository.prototype.listSyncedServerIds;
    jest.spyOn(DiscoveryRepository.prototype, 'listSyncedServerIds').mockImplementation(async function (
      this: DiscoveryRepository,
    ) {
      return (await list.call(this)).filter((id) => mine.has(id));
    });
    gw = await startTestGateway('services', { UPSTREAM_ALLOWED_HOSTS: 'loopback', DISCOVERY_INTERVAL_MS: '200' });
    prisma = gw.gateway.app.get(PrismaService);
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    if (prisma) await deleteServerRows(prisma, [...mine]);
    await gw?.close();
    await upstream?.stop();
  });

  it('syncs servers nobody announced, and stops promptly', async () => {
    const server = await createServerRow(prisma, { url: upstream.url });
    const disabled = await createServerRow(prisma, { url: upstream.url, status: 'disabled' });
    mine.add(server.id);
    mine.add(disabled.id);
    const view = await eventually(
      async () =>
        (await request(gw.url).get(`/api/v1/servers/${server.id}/capabilities`).expect(200)).body as CapabilitiesView,
      (body) => body.syncedAt !== null,
    );
    expect(view.tools.map((tool: { name: string }) => tool.name)).toEqual(['echoBye']);
    const untouched = await request(gw.url).get(`/api/v1/servers/${disabled.id}/capabilities`).expect(200);
    expect(untouched.body.syncedAt).toBeNull();
    await deleteServerRows(prisma, [...mine]);
    mine.clear();
    // Closing does not wait for the sweep loop: a close that hung on it would fail on the test's timeout.
    // (No bound in milliseconds here: on a loaded CI machine, closing pools alone can take seconds.)
    await expect(gw.close()).resolves.toBeUndefined();
  });
});

describe('discovery (embedded)', () => {
  let gw: TestGateway;
  let paged: PagedUpstream;

  beforeAll(async () => {
    paged = await PagedUpstream.start('paged', { tools: numberedTools(7), pageSize: 3 });
    gw = await startTestGateway('embedded', { UPSTREAM_ALLOWED_HOSTS: 'loopback' });
  });

  afterAll(async () => {
    await gw?.close();
    await paged?.stop();
  });

  it('syncs, stores and searches on the embedded database too', async () => {
    const server = await createServerRow(gw.gateway.app.get(PrismaService), { url: paged.url, tags: ['embedded'] });
    const synced = await request(gw.url).post(`/api/v1/servers/${server.id}/refresh`).expect(200);
    expect(synced.body.tools).toHaveLength(7);
    const again = await request(gw.url).post(`/api/v1/servers/${server.id}/refresh`).expect(200);
    expect(again.body.changes).toEqual([]);

    const first = await request(gw.url).get('/api/v1/discovery/tools').query({ tag: 'embedded', limit: 4 }).expect(200);
    expect(first.body.items).toHaveLength(4);
    const rest = await request(gw.url)
      .get('/api/v1/discovery/tools')
      .query({ tag: 'embedded', limit: 4, cursor: first.body.nextCursor })
      .expect(200);
    expect(rest.body.nextCursor).toBeNull();
    expect([...first.body.items, ...rest.body.items].map((item: { name: string }) => item.name)).toEqual(
      numberedTools(7).map((tool) => tool.name),
    );
    const literal = await request(gw.url).get('/api/v1/discovery/tools').query({ tag: 'embedded', q: '%' }).expect(200);
    expect(literal.body.items).toEqual([]);
  });
});
