import type { PrismaService } from '../database/prisma.service';
import { RegistryEvents } from '../registry/registry-events';
import { ServerDirectory } from './server-directory';

/** A `server.findFirst` whose answers the test hands out one at a time. */
function setup() {
  const pending: { resolve: (row: null) => void; reject: (error: Error) => void }[] = [];
  const findFirst = jest.fn(
    () =>
      new Promise<null>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
  );
  const events = new RegistryEvents();
  const directory = new ServerDirectory({ server: { findFirst } } as unknown as PrismaService, events);
  return { directory, findFirst, pending, events };
}

describe('ServerDirectory.bySlug', () => {
  afterEach(() => jest.useRealTimers());

  it('asks the database once for the requests that arrive while a lookup runs', async () => {
    const { directory, findFirst, pending } = setup();
    const lookups = Array.from({ length: 20 }, () => directory.bySlug('echo'));
    expect(findFirst).toHaveBeenCalledTimes(1);
    pending[0]!.resolve(null);
    await expect(Promise.all(lookups)).resolves.toEqual(Array.from({ length: 20 }, () => undefined));
    await directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(1);
  });

  it('asks again once the entry is a second old, and for another slug at once', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { directory, findFirst, pending } = setup();
    const first = directory.bySlug('echo');
    pending[0]!.resolve(null);
    await first;
    const other = directory.bySlug('other');
    expect(findFirst).toHaveBeenCalledTimes(2);
    pending[1]!.resolve(null);
    await other;
    jest.setSystemTime(1_000_999);
    void directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(2);
    jest.setSystemTime(1_001_000);
    const again = directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(3);
    pending[2]!.resolve(null);
    await again;
  });

  it('does not remember a failed lookup: its callers see the failure, the next request asks again', async () => {
    const { directory, findFirst, pending } = setup();
    const failing = [directory.bySlug('echo'), directory.bySlug('echo')];
    pending[0]!.reject(new Error('connection lost'));
    for (const lookup of failing) await expect(lookup).rejects.toThrow('connection lost');
    const retried = directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(2);
    pending[1]!.resolve(null);
    await expect(retried).resolves.toBeUndefined();
  });

  it('forgets what it knows when the registry changes', async () => {
    const { directory, findFirst, pending, events } = setup();
    const first = directory.bySlug('echo');
    pending[0]!.resolve(null);
    await first;
    events.emit({ type: 'updated', serverId: 'id', slug: 'echo' });
    const after = directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(2);
    pending[1]!.resolve(null);
    await after;
  });
});
