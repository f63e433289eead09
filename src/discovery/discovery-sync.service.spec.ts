import { ClusterSignals } from '../redis/cluster-signals';
import { MemoryStore } from '../redis/memory-store';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { PinoLogger } from 'nestjs-pino';
import { createPagedServer, numberedTools, type PagedCatalog } from '../../test/support/paged-upstream';
import type { UpstreamTarget } from '../registry/server.schema';
import type { UpstreamConnector, UpstreamSession } from '../upstream/upstream-connector';
import { UpstreamError } from '../upstream/upstream-error';
import type { DiscoveryRepository, ServerForSync, SnapshotToSave } from './discovery.repository';
import type { ItemChangeRecord } from './item-records';
import { DiscoverySyncService } from './discovery-sync.service';
import type { ListChangedWatchers } from './list-changed-watchers';

const SERVER: ServerForSync = {
  id: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  slug: 'paged',
  name: 'io.test/paged',
  url: 'http://127.0.0.1:9/mcp',
  transport: 'streamable-http',
  auth: { type: 'none' },
  timeouts: { requestMs: 5_000 },
  toolRules: {},
  status: 'active',
  revision: 1,
  createdAt: new Date('2026-01-01T00:00:00Z'),
};

async function inMemorySession(catalog: PagedCatalog): Promise<UpstreamSession & { closed: boolean }> {
  const server = createPagedServer('paged', () => catalog);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'spec', version: '1.0.0' });
  await client.connect(clientSide);
  const session = {
    client,
    protocolVersion: '2025-11-25',
    tooLarge: new AbortController().signal,
    closed: false,
    close: async () => {
      session.closed = true;
      await client.close();
      await server.close();
    },
  };
  return session;
}

function setup(server: ServerForSync | null = SERVER) {
  const repository = {
    findServer: jest.fn((_id: string) => Promise.resolve(server ?? undefined)),
    saveSnapshot: jest.fn((_id: string, _snapshot: SnapshotToSave) =>
      Promise.resolve<{ changes: ItemChangeRecord[]; changed: boolean } | undefined>({ changes: [], changed: true }),
    ),
    recordFailure: jest.fn((_id: string, _lastError: string, _at: Date) => Promise.resolve()),
  };
  const sessions: (UpstreamSession & { closed: boolean })[] = [];
  const connector = {
    connect: jest.fn(async (_target: UpstreamTarget) => {
      const session = await inMemorySession({ tools: numberedTools(3) });
      sessions.push(session);
      return session;
    }),
    requestTimeoutMs: jest.fn(() => 5_000),
  };
  const watchers = { watch: jest.fn(), unwatch: jest.fn(), onListChanged: jest.fn() };
  const logger = { info: jest.fn(), warn: jest.fn(), error: jest.fn(), debug: jest.fn() };
  const signals = new ClusterSignals(new MemoryStore());
  const service = new DiscoverySyncService(
    repository as unknown as DiscoveryRepository,
    connector as unknown as UpstreamConnector,
    watchers as unknown as ListChangedWatchers,
    signals,
    logger as unknown as PinoLogger,
  );
  return { service, repository, connector, watchers, sessions, signals, logger };
}

describe('DiscoverySyncService', () => {
  it('stores what the upstream lists, with gateway names, and closes the session', async () => {
    const { service, repository, sessions, watchers } = setup();
    const outcome = await service.sync(SERVER.id, 'refresh');
    expect(outcome).toEqual({ status: 'synced', serverId: SERVER.id, items: 3, changes: 0, truncated: [] });
    const snapshot = repository.saveSnapshot.mock.calls[0]?.[1];
    expect(snapshot?.items.map((item) => item.gatewayName)).toEqual([
      'paged__tool-000',
      'paged__tool-001',
      'paged__tool-002',
    ]);
    expect(snapshot?.serverInfo).toMatchObject({ name: 'paged' });
    expect(sessions.every((session) => session.closed)).toBe(true);
    // The paged fixture does not announce list changes: nothing to watch.
    expect(watchers.unwatch).toHaveBeenCalledWith(SERVER.id);
    expect(watchers.watch).not.toHaveBeenCalled();
  });

  it('signals catalog:stale after a sync that changed what the server offers, and only then', async () => {
    const { service, repository, signals } = setup();
    const raise = jest.spyOn(signals, 'raise');

    await service.sync(SERVER.id, 'registered');
    expect(raise.mock.calls).toEqual([['catalog:stale']]);

    repository.saveSnapshot.mockResolvedValueOnce({ changes: [], changed: false });
    await service.sync(SERVER.id, 'periodic');
    expect(raise).toHaveBeenCalledTimes(1);

    repository.saveSnapshot.mockResolvedValueOnce({ changes: [], changed: true });
    await service.sync(SERVER.id, 'periodic');
    expect(raise).toHaveBeenCalledTimes(2);
  });

  it('coalesces: while a sync runs, every further ask shares the one queued after it', async () => {
    const { service, connector } = setup();
    const first = service.sync(SERVER.id, 'refresh');
    const second = service.sync(SERVER.id, 'list_changed');
    const third = service.sync(SERVER.id, 'periodic');
    expect(third).toBe(second);
    expect(service.isSyncing(SERVER.id)).toBe(true);
    await Promise.all([first, second, third]);
    expect(connector.connect).toHaveBeenCalledTimes(2);
    expect(service.isSyncing(SERVER.id)).toBe(false);
    await service.sync(SERVER.id, 'refresh');
    expect(connector.connect).toHaveBeenCalledTimes(3);
  });

  it('records a classified failure, keeps the items, and closes the session', async () => {
    const { service, repository, connector, sessions } = setup();
    connector.connect.mockImplementationOnce(async () => {
      const session = await inMemorySession({ tools: numberedTools(1) });
      sessions.push(session);
      jest
        .spyOn(session.client, 'request')
        .mockRejectedValue(new UpstreamError('timeout', 'the upstream did not answer in time'));
      return session;
    });
    const outcome = await service.sync(SERVER.id, 'refresh');
    expect(outcome).toEqual({
      status: 'failed',
      serverId: SERVER.id,
      failure: { kind: 'timeout', message: 'the upstream did not answer in time', httpStatus: undefined },
    });
    expect(repository.recordFailure).toHaveBeenCalledWith(
      SERVER.id,
      'timeout: the upstream did not answer in time',
      expect.any(Date),
    );
    expect(repository.saveSnapshot).not.toHaveBeenCalled();
    expect(sessions[0]?.closed).toBe(true);
  });

  it('does not sync a disabled or unknown server, and stops watching it', async () => {
    const disabled = setup({ ...SERVER, status: 'disabled' });
    expect(await disabled.service.sync(SERVER.id, 'updated')).toEqual({ status: 'disabled', serverId: SERVER.id });
    expect(disabled.connector.connect).not.toHaveBeenCalled();
    expect(disabled.watchers.unwatch).toHaveBeenCalledWith(SERVER.id);

    const unknown = setup(null);
    expect(await unknown.service.sync(SERVER.id, 'refresh')).toEqual({ status: 'not_found', serverId: SERVER.id });
  });

  it('starts nothing once shutting down', async () => {
    const { service, connector } = setup();
    service.onModuleDestroy();
    expect(await service.sync(SERVER.id, 'periodic')).toEqual({ status: 'stopped', serverId: SERVER.id });
    expect(connector.connect).not.toHaveBeenCalled();
  });
});

describe('DiscoverySyncService, a stored server it cannot read', () => {
  it.each([
    [{ auth: { type: 'bogus' } }, 'auth.type'],
    [{ timeouts: { connectMs: -1 } }, 'timeouts.connectMs'],
    [{ transport: 'carrier-pigeon' }, 'transport'],
    [{ toolRules: { allow: 'get_*' } }, 'toolRules.allow'],
    [{ status: 'paused' }, 'status'],
  ])('is neither synced nor watched, nor blamed on the upstream (%j)', async (change, field) => {
    const { service, repository, connector, watchers } = setup({ ...SERVER, ...change });
    const outcome = await service.sync(SERVER.id, 'periodic');
    expect(outcome).toEqual({
      status: 'unreadable',
      serverId: SERVER.id,
      server: expect.objectContaining({
        id: SERVER.id,
        slug: 'paged',
        revision: 1,
        problems: [expect.objectContaining({ field })],
      }) as unknown,
    });
    expect(connector.connect).not.toHaveBeenCalled();
    expect(repository.recordFailure).not.toHaveBeenCalled();
    expect(repository.saveSnapshot).not.toHaveBeenCalled();
    expect(watchers.unwatch).toHaveBeenCalledWith(SERVER.id);
  });

  it('is logged once a revision, at warn, with the fields at fault', async () => {
    const { service, repository, logger } = setup({ ...SERVER, auth: { type: 'bogus' } });
    await service.sync(SERVER.id, 'periodic');
    await service.sync(SERVER.id, 'periodic');
    repository.findServer.mockResolvedValue({ ...SERVER, auth: { type: 'bogus' }, revision: 2 });
    await service.sync(SERVER.id, 'periodic');
    await service.sync(SERVER.id, 'periodic');
    expect(logger.warn.mock.calls).toEqual([
      [
        {
          serverId: SERVER.id,
          slug: 'paged',
          problems: [{ field: 'auth.type', message: expect.any(String) as unknown }],
        },
        'a stored server the gateway cannot read is not synced, nor watched, until an admin repairs or deletes it',
      ],
      [expect.objectContaining({ serverId: SERVER.id }), expect.any(String)],
    ]);
    expect(logger.error).not.toHaveBeenCalled();
  });
});
