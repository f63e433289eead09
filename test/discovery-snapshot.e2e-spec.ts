import { randomUUID } from 'node:crypto';
import type { PrismaService } from '../src/database/prisma.service';
import { DiscoveryRepository, type SnapshotToSave } from '../src/discovery/discovery.repository';
import { itemRecords } from '../src/discovery/item-records';
import type { Definition } from '../src/discovery/upstream-catalog';
import { CatalogRepository } from '../src/mcp/catalog.repository';
import { startScratchPrisma } from './support/scratch-prisma';

/** Whether a sync changed what the gateway offers: what decides catalog:stale and the catalogs' marker. */
describe('DiscoveryRepository.saveSnapshot: changed', () => {
  let scratch: Awaited<ReturnType<typeof startScratchPrisma>> | undefined;
  let prisma: PrismaService;
  let repository: DiscoveryRepository;
  let catalog: CatalogRepository;
  let serverId: string;
  let clock = Date.UTC(2026, 0, 1);

  const tools: Definition[] = [
    { name: 'get_issue', description: 'Gets an issue', inputSchema: { type: 'object' } },
    { name: 'list_issues', inputSchema: { type: 'object' }, _meta: { 'io.test/rank': 1 } },
  ];
  const capabilities = { tools: { listChanged: true } };

  function snapshot(overrides: { tools?: Definition[]; capabilities?: Definition } = {}): SnapshotToSave {
    clock += 1000;
    return {
      serverInfo: { name: 'upstream', version: '1.0.0' },
      protocolVersion: '2025-11-25',
      capabilities: overrides.capabilities ?? capabilities,
      instructions: null,
      items: itemRecords('issues', { tool: overrides.tools ?? tools, prompt: [], resource: [], resource_template: [] }),
      syncedAt: new Date(clock),
    };
  }

  async function discoveryRow(): Promise<{ syncedAt: Date | null; changedAt: Date | null }> {
    const row = await prisma.serverDiscovery.findUniqueOrThrow({
      where: { serverId },
      select: { syncedAt: true, changedAt: true },
    });
    return row;
  }

  beforeAll(async () => {
    scratch = await startScratchPrisma();
    prisma = scratch.prisma;
    repository = new DiscoveryRepository(prisma);
    catalog = new CatalogRepository(prisma);
    serverId = randomUUID();
    await prisma.server.create({
      data: { id: serverId, name: 'io.test/issues', slug: 'issues', url: 'http://127.0.0.1:9/mcp', tags: [] },
    });
  });

  afterAll(async () => {
    await scratch?.close();
  });

  it('is true for the first sync, and changed_at is its time', async () => {
    const first = snapshot();
    await expect(repository.saveSnapshot(serverId, first)).resolves.toEqual({ changes: [], changed: true });
    expect(await discoveryRow()).toEqual({ syncedAt: first.syncedAt, changedAt: first.syncedAt });
  });

  it('is false when the upstream offers the same, in another order of keys too; the marker stays', async () => {
    const before = await discoveryRow();
    const marker = await catalog.marker();
    const reordered = tools.map((tool) => Object.fromEntries(Object.entries(tool).reverse()));
    const same = snapshot({ tools: reordered });
    await expect(repository.saveSnapshot(serverId, same)).resolves.toEqual({ changes: [], changed: false });
    expect(await discoveryRow()).toEqual({ syncedAt: same.syncedAt, changedAt: before.changedAt });
    expect(await catalog.marker()).toEqual(marker);
  });

  it('is true when only what the fingerprint leaves out changed (_meta), and the marker moves', async () => {
    const marker = await catalog.marker();
    const meta = snapshot({ tools: [tools[0]!, { ...tools[1]!, _meta: { 'io.test/rank': 2 } }] });
    await expect(repository.saveSnapshot(serverId, meta)).resolves.toEqual({ changes: [], changed: true });
    expect((await discoveryRow()).changedAt).toEqual(meta.syncedAt);
    expect(await catalog.marker()).not.toEqual(marker);
  });

  it('is true when the capabilities changed', async () => {
    const next = snapshot({
      tools: [tools[0]!, { ...tools[1]!, _meta: { 'io.test/rank': 2 } }],
      capabilities: { tools: {} },
    });
    await expect(repository.saveSnapshot(serverId, next)).resolves.toEqual({ changes: [], changed: true });
  });

  it('is true, with the changes recorded, when a tool went away', async () => {
    const next = snapshot({ tools: [tools[0]!], capabilities: { tools: {} } });
    const saved = await repository.saveSnapshot(serverId, next);
    expect(saved?.changed).toBe(true);
    expect(saved?.changes).toEqual([expect.objectContaining({ name: 'list_issues', change: 'removed' })]);
  });
});
