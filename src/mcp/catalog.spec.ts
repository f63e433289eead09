import type { PinoLogger } from 'nestjs-pino';
import type { AccessPolicy } from '../auth/access-policy';
import { ClusterSignals } from '../redis/cluster-signals';
import { MemoryStore } from '../redis/memory-store';
import { RegistryEvents } from '../registry/registry-events';
import { Catalog, REBUILD_DEBOUNCE_MS } from './catalog';
import type { CatalogItemRow, CatalogMarker, CatalogRepository } from './catalog.repository';
import type { ServerRow } from './server-directory';

const MARKER: CatalogMarker = { servers: 0, serversUpdatedAt: 0, itemsChangedAt: 0, healthChangedAt: 0 };

/** Lets queued promise callbacks and microtasks (the store's signal delivery) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function setup() {
  let release: (() => void) | undefined;
  const repository = {
    marker: jest.fn(() => Promise.resolve(MARKER)),
    reachableServers: jest.fn((): Promise<ServerRow[]> => {
      // A test may hold a rebuild open to see what happens meanwhile.
      if (!release) return Promise.resolve([]);
      return new Promise((resolve) => {
        const done = release;
        release = () => {
          done?.();
          resolve([]);
        };
      });
    }),
    itemsChangedAt: jest.fn(() => Promise.resolve(new Map<string, number>())),
    items: jest.fn((): Promise<CatalogItemRow[]> => Promise.resolve([])),
  };
  const logger = { setContext: jest.fn(), warn: jest.fn(), info: jest.fn(), debug: jest.fn(), error: jest.fn() };
  const signals = new ClusterSignals(new MemoryStore());
  const events = new RegistryEvents();
  const catalog = new Catalog(
    repository as unknown as CatalogRepository,
    {} as AccessPolicy,
    logger as unknown as PinoLogger,
    signals,
    events,
  );
  const hold = (): (() => void) => {
    release = () => undefined;
    return () => {
      const open = release;
      release = undefined;
      open?.();
    };
  };
  return { catalog, repository, signals, events, hold };
}

describe('Catalog rebuilds', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick'] });
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('coalesces a burst of catalog:stale signals into one rebuild', async () => {
    const { catalog, repository, signals } = setup();
    await catalog.onApplicationBootstrap();
    expect(repository.reachableServers).toHaveBeenCalledTimes(1);

    for (let i = 0; i < 20; i++) await signals.raise('catalog:stale');
    await settle();
    expect(repository.reachableServers).toHaveBeenCalledTimes(1);

    await jest.advanceTimersByTimeAsync(REBUILD_DEBOUNCE_MS);
    expect(repository.reachableServers).toHaveBeenCalledTimes(2);

    await signals.raise('catalog:stale');
    await settle();
    await jest.advanceTimersByTimeAsync(REBUILD_DEBOUNCE_MS);
    expect(repository.reachableServers).toHaveBeenCalledTimes(3);
    await catalog.onModuleDestroy();
  });

  it('coalesces registry changes made here too', async () => {
    const { catalog, repository, events } = setup();
    await catalog.onApplicationBootstrap();
    for (let i = 0; i < 5; i++) events.emit({ type: 'created', serverId: `id-${i}`, slug: `s-${i}` });
    await settle();
    await jest.advanceTimersByTimeAsync(REBUILD_DEBOUNCE_MS);
    await settle();
    // The events, and the signals they raised for the other replicas (this one hears them too): one rebuild.
    expect(repository.reachableServers).toHaveBeenCalledTimes(2);
    await catalog.onModuleDestroy();
  });

  it('refresh during a rebuild waits for one more rebuild, shared by every caller meanwhile', async () => {
    const { catalog, repository, hold } = setup();
    const open = hold();
    const first = catalog.refresh();
    await settle();
    expect(repository.reachableServers).toHaveBeenCalledTimes(1);

    const second = catalog.refresh();
    const third = catalog.refresh();
    expect(third).toBe(second);
    open();
    await Promise.all([first, second, third]);
    // The running one could have read the database before the change the later callers know of: one more ran.
    expect(repository.reachableServers).toHaveBeenCalledTimes(2);
  });

  it('rebuilds after a poll only when the marker moved', async () => {
    const { catalog, repository } = setup();
    await catalog.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(2_000);
    expect(repository.reachableServers).toHaveBeenCalledTimes(1);

    repository.marker.mockResolvedValue({ ...MARKER, itemsChangedAt: 1 });
    await jest.advanceTimersByTimeAsync(2_000);
    await settle();
    expect(repository.reachableServers).toHaveBeenCalledTimes(2);
    await catalog.onModuleDestroy();
  });
});
