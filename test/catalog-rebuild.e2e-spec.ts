import { randomUUID } from 'node:crypto';
import type { PinoLogger } from 'nestjs-pino';
import { AccessPolicy } from '../src/auth/access-policy';
import { loadConfig } from '../src/config/config';
import type { PrismaService } from '../src/database/prisma.service';
import { DiscoveryRepository } from '../src/discovery/discovery.repository';
import { itemRecords } from '../src/discovery/item-records';
import type { Definition } from '../src/discovery/upstream-catalog';
import { Catalog, type CatalogSnapshot, definitionOf } from '../src/mcp/catalog';
import { type CatalogItemRow, CatalogRepository } from '../src/mcp/catalog.repository';
import { ClusterSignals } from '../src/redis/cluster-signals';
import { MemoryStore } from '../src/redis/memory-store';
import { RegistryEvents } from '../src/registry/registry-events';
import { startScratchPrisma } from './support/scratch-prisma';

/** The repository as the gateway has it, noting which servers' items each rebuild read. */
class CountingRepository extends CatalogRepository {
  readonly reads: string[][] = [];

  override async items(serverIds: string[]): Promise<CatalogItemRow[]> {
    this.reads.push([...serverIds].sort());
    return super.items(serverIds);
  }
}

const CALLER = { roles: ['Catalog.Caller'] };

/**
 * The catalog keeps each server's part from one rebuild to the next and reads again only the servers that
 * changed: what it offers must stay what a catalog reading everything at once builds.
 */
describe('Catalog rebuilds read only the servers that changed', () => {
  let scratch: Awaited<ReturnType<typeof startScratchPrisma>> | undefined;
  let prisma: PrismaService;
  let discovery: DiscoveryRepository;
  let repository: CountingRepository;
  let catalog: Catalog;
  const opened: Catalog[] = [];
  const policy = new AccessPolicy(loadConfig({ NODE_ENV: 'test' }));
  let clock = Date.UTC(2026, 0, 1);

  function newCatalog(
    from: CatalogRepository,
    logger = { setContext: jest.fn(), warn: jest.fn(), info: jest.fn(), debug: jest.fn(), error: jest.fn() },
  ): Catalog {
    const made = new Catalog(
      from,
      policy,
      logger as unknown as PinoLogger,
      new ClusterSignals(new MemoryStore()),
      new RegistryEvents(),
    );
    opened.push(made);
    return made;
  }

  /** A catalog that never saw an earlier state, built from the database as it is now. */
  async function fresh(): Promise<Catalog> {
    const other = newCatalog(new CatalogRepository(prisma));
    await other.refresh();
    return other;
  }

  function tools(prefix: string, count: number, description = 'A tool'): Definition[] {
    return Array.from({ length: count }, (_, index) => ({
      name: `${prefix}_${index}`,
      description,
      inputSchema: { type: 'object', properties: { id: { type: 'string' } } },
    }));
  }

  async function addServer(slug: string, definitions: Definition[]): Promise<string> {
    const id = randomUUID();
    await prisma.server.create({
      data: {
        id,
        name: `io.test/${slug}`,
        slug,
        url: 'http://127.0.0.1:9/mcp',
        tags: [],
        allowedRoles: CALLER.roles,
      },
    });
    await sync(id, slug, definitions);
    return id;
  }

  async function sync(serverId: string, slug: string, definitions: Definition[]): Promise<void> {
    clock += 1000;
    await discovery.saveSnapshot(serverId, {
      serverInfo: { name: slug, version: '1.0.0' },
      protocolVersion: '2025-11-25',
      capabilities: { tools: {} },
      instructions: null,
      items: itemRecords(slug, { tool: definitions, prompt: [], resource: [], resource_template: [] }),
      syncedAt: new Date(clock),
    });
  }

  function names(snapshot: CatalogSnapshot): string[] {
    return snapshot.entries.tool.map((entry) => entry.gatewayName);
  }

  /** What the snapshot's maps are keyed by, sorted. */
  function lookups(snapshot: CatalogSnapshot): Record<string, string[]> {
    const tools = [...snapshot.toolsByServer].flatMap(([serverId, byName]) =>
      [...byName.keys()].map((name) => `${serverId} ${name}`),
    );
    return {
      tools: tools.sort(),
      toolNames: [...snapshot.byGatewayName.tool.keys()].sort(),
      promptNames: [...snapshot.byGatewayName.prompt.keys()].sort(),
    };
  }

  async function expectSameAsFresh(): Promise<void> {
    const other = await fresh();
    const [mine, theirs] = [catalog.current(), other.current()];
    expect(mine.version).toBe(theirs.version);
    expect(mine.servers).toEqual(theirs.servers);
    for (const kind of ['tool', 'prompt', 'resource', 'resource_template'] as const) {
      expect(mine.entries[kind].map(definitionOf)).toEqual(theirs.entries[kind].map(definitionOf));
    }
    expect(lookups(mine)).toEqual(lookups(theirs));
    expect(catalog.listBodyFor(CALLER, 'tool').equals(other.listBodyFor(CALLER, 'tool'))).toBe(true);
  }

  let alpha: string;
  let beta: string;

  beforeAll(async () => {
    scratch = await startScratchPrisma();
    prisma = scratch.prisma;
    discovery = new DiscoveryRepository(prisma);
    repository = new CountingRepository(prisma);
    catalog = newCatalog(repository);
    // Slug order puts alpha first, gateway-name order alpha-2 ('-' sorts before '_'): lists follow the names.
    alpha = await addServer('alpha', tools('tool', 3));
    beta = await addServer('alpha-2', tools('tool', 2));
    await catalog.refresh();
  });

  afterAll(async () => {
    for (const made of opened) await made.onModuleDestroy();
    await scratch?.close();
  });

  it('reads every server at first, in gateway-name order across servers', async () => {
    expect(repository.reads).toEqual([[alpha, beta].sort()]);
    expect(names(catalog.current())).toEqual([
      'alpha-2__tool_0',
      'alpha-2__tool_1',
      'alpha__tool_0',
      'alpha__tool_1',
      'alpha__tool_2',
    ]);
    await expectSameAsFresh();
  });

  it('reads only the server registered since, and offers what a full read offers', async () => {
    repository.reads.length = 0;
    const before = catalog.current();
    const gamma = await addServer('gamma', tools('tool', 2));
    await catalog.refresh();
    expect(repository.reads).toEqual([[gamma]]);
    expect(catalog.current().version).not.toBe(before.version);
    expect(names(catalog.current())).toContain('gamma__tool_1');
    // The servers that did not change keep their entries (the REST bridge's validators are keyed by them).
    expect(catalog.current().toolsByServer.get(alpha)?.get('tool_0')).toBe(
      before.toolsByServer.get(alpha)?.get('tool_0'),
    );
    await expectSameAsFresh();
  });

  it('reads a server again when a sync changed its items', async () => {
    repository.reads.length = 0;
    await sync(beta, 'alpha-2', tools('tool', 2, 'Changed'));
    await catalog.refresh();
    expect(repository.reads).toEqual([[beta]]);
    const changed = catalog.current().toolsByServer.get(beta)?.get('tool_0');
    expect(changed && definitionOf(changed).description).toBe('Changed');
    await expectSameAsFresh();
  });

  it('reads nothing when a sync found everything as it was, and keeps the version', async () => {
    repository.reads.length = 0;
    const before = catalog.current();
    await sync(beta, 'alpha-2', tools('tool', 2, 'Changed'));
    await catalog.refresh();
    expect(repository.reads).toEqual([[]]);
    expect(catalog.current().version).toBe(before.version);
    expect(catalog.current().entries.tool).toEqual(before.entries.tool);
  });

  it('reads a server again when its registration changed, and applies its roles', async () => {
    repository.reads.length = 0;
    await prisma.server.update({ where: { id: alpha }, data: { allowedRoles: ['Someone.Else'] } });
    await catalog.refresh();
    expect(repository.reads).toEqual([[alpha]]);
    const entry = catalog.current().toolsByServer.get(alpha)!.get('tool_0')!;
    expect(entry.server.allowedRoles).toEqual(['Someone.Else']);
    expect(catalog.allows(CALLER, entry)).toBe(false);
    expect(JSON.parse(catalog.listBodyFor(CALLER, 'tool').toString('utf8'))).not.toContainEqual(
      expect.objectContaining({ name: 'alpha__tool_0' }),
    );
    await expectSameAsFresh();
  });

  it('drops an unreachable server, and reads it again once it is back', async () => {
    repository.reads.length = 0;
    await prisma.serverHealth.create({ data: { serverId: beta, status: 'unreachable' } });
    await catalog.refresh();
    expect(names(catalog.current()).some((name) => name.startsWith('alpha-2__'))).toBe(false);
    await expectSameAsFresh();

    await prisma.serverHealth.update({ where: { serverId: beta }, data: { status: 'healthy' } });
    await catalog.refresh();
    expect(repository.reads).toEqual([[], [beta]]);
    expect(names(catalog.current())).toContain('alpha-2__tool_1');
    await expectSameAsFresh();
  });

  it('logs the first of a run of failed reads and the read that succeeds after them, not every retry', async () => {
    const logger = { setContext: jest.fn(), warn: jest.fn(), info: jest.fn(), debug: jest.fn(), error: jest.fn() };
    let down = false;
    // The database away, as the repository meets it: every query fails.
    const failing = new (class extends CatalogRepository {
      override async marker(): ReturnType<CatalogRepository['marker']> {
        if (down) throw new Error("Can't reach database server");
        return super.marker();
      }
    })(prisma);
    const made = newCatalog(failing, logger);
    await made.refresh();
    down = true;
    for (let i = 0; i < 5; i++) await made.refresh();
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn).toHaveBeenCalledWith(
      { err: expect.any(Error) },
      expect.stringContaining('catalog rebuild failed'),
    );
    expect(logger.info).not.toHaveBeenCalled();
    down = false;
    await made.refresh();
    await made.refresh();
    expect(logger.info).toHaveBeenCalledTimes(1);
    expect(logger.info).toHaveBeenCalledWith('catalog read again');
    down = true;
    await made.refresh();
    expect(logger.warn).toHaveBeenCalledTimes(2);
  });

  it('drops a deleted server without reading anything', async () => {
    repository.reads.length = 0;
    await prisma.server.delete({ where: { id: alpha } });
    await catalog.refresh();
    expect(repository.reads).toEqual([[]]);
    expect(names(catalog.current()).some((name) => name.startsWith('alpha__'))).toBe(false);
    expect(catalog.current().toolsByServer.has(alpha)).toBe(false);
    await expectSameAsFresh();
  });
});
