import type * as timers from 'node:timers';
import type { PinoLogger } from 'nestjs-pino';
import type { PrismaService } from '../database/prisma.service';
import { RegistryEvents } from '../registry/registry-events';
import { ServerDirectory } from './server-directory';

/** A stored server `toGatewayServer` takes. */
const ROW = {
  id: '0190b6a0-0000-7000-8000-000000000001',
  slug: 'echo',
  url: 'http://127.0.0.1:9/mcp',
  transport: 'streamable-http',
  auth: { type: 'none' },
  timeouts: {},
  name: 'io.example/echo',
  title: null,
  status: 'active',
  allowedRoles: [],
  toolRules: {},
  revision: 1,
};

/** Lets the answers handed out so far reach the directory (a turn of the real event loop, under fake timers too). */
function settled(): Promise<void> {
  const { setImmediate: immediate } = jest.requireActual<typeof timers>('node:timers');
  return new Promise((resolve) => immediate(resolve));
}

/** A `server.findFirst` whose answers the test hands out one at a time. */
function setup() {
  const pending: { resolve: (row: typeof ROW | null) => void; reject: (error: Error) => void }[] = [];
  const findFirst = jest.fn(
    () =>
      new Promise<typeof ROW | null>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
  );
  const events = new RegistryEvents();
  const logger = { warn: jest.fn() };
  const directory = new ServerDirectory(
    { server: { findFirst } } as unknown as PrismaService,
    events,
    logger as unknown as PinoLogger,
  );
  return { directory, findFirst, pending, events, logger };
}

describe('ServerDirectory.bySlug', () => {
  afterEach(() => jest.useRealTimers());

  it('asks the database once for the requests that arrive while a lookup runs', async () => {
    const { directory, findFirst, pending } = setup();
    const lookups = Array.from({ length: 20 }, () => Promise.resolve(directory.bySlug('echo')));
    expect(findFirst).toHaveBeenCalledTimes(1);
    pending[0]!.resolve(null);
    await expect(Promise.all(lookups)).resolves.toEqual(Array.from({ length: 20 }, () => undefined));
    await directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(1);
  });

  it('answers from an entry whose lookup has answered at once, not with a promise', async () => {
    const { directory, pending } = setup();
    const lookup = directory.bySlug('echo');
    expect(lookup).toBeInstanceOf(Promise);
    pending[0]!.resolve(ROW);
    await lookup;
    const server = directory.bySlug('echo');
    expect(server).not.toBeInstanceOf(Promise);
    expect(server).toMatchObject({ slug: 'echo', url: ROW.url });
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
    jest.setSystemTime(1_000_749);
    void directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(2);
    jest.setSystemTime(1_001_000);
    // Expired with no request to refresh it: this one waits for the database.
    let answered = false;
    const again = Promise.resolve(directory.bySlug('echo')).then((server) => {
      answered = true;
      return server;
    });
    expect(findFirst).toHaveBeenCalledTimes(3);
    await settled();
    expect(answered).toBe(false);
    pending[2]!.resolve(ROW);
    await expect(again).resolves.toMatchObject({ slug: 'echo' });
  });

  it('looks an entry 750 ms old up again in the background, answering from it meanwhile, and takes the new answer', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { directory, findFirst, pending } = setup();
    const first = directory.bySlug('echo');
    pending[0]!.resolve(null);
    await expect(first).resolves.toBeUndefined();
    jest.setSystemTime(1_000_750);
    // The refresh has not answered: the entry does, at once.
    expect(directory.bySlug('echo')).toBeUndefined();
    expect(findFirst).toHaveBeenCalledTimes(2);
    jest.setSystemTime(1_000_900);
    expect(directory.bySlug('echo')).toBeUndefined();
    expect(findFirst).toHaveBeenCalledTimes(2);
    pending[1]!.resolve(ROW);
    await settled();
    expect(directory.bySlug('echo')).toMatchObject({ slug: 'echo', url: ROW.url });
    // The new answer holds as of its lookup's start (1_000_750): it expires a second after that.
    jest.setSystemTime(1_001_750);
    void directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(3);
  });

  it('lets a failed refresh go: the entry answers until it expires, then a request waits for the database', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { directory, findFirst, pending } = setup();
    const first = directory.bySlug('echo');
    pending[0]!.resolve(ROW);
    await first;
    jest.setSystemTime(1_000_800);
    void directory.bySlug('echo');
    pending[1]!.reject(new Error('connection lost'));
    await settled();
    jest.setSystemTime(1_000_900);
    expect(directory.bySlug('echo')).toMatchObject({ slug: 'echo' });
    expect(findFirst).toHaveBeenCalledTimes(2);
    jest.setSystemTime(1_001_000);
    const after = directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(3);
    pending[2]!.reject(new Error('connection lost'));
    await expect(after).rejects.toThrow('connection lost');
  });

  it('does not keep a refreshed answer the registry changed since: the next request asks anew', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { directory, findFirst, pending, events } = setup();
    const first = directory.bySlug('echo');
    pending[0]!.resolve(ROW);
    await first;
    jest.setSystemTime(1_000_800);
    void directory.bySlug('echo');
    events.emit({ type: 'deleted', serverId: ROW.id, slug: 'echo' });
    pending[1]!.resolve(ROW);
    await settled();
    const after = directory.bySlug('echo');
    expect(findFirst).toHaveBeenCalledTimes(3);
    pending[2]!.resolve(null);
    await expect(after).resolves.toBeUndefined();
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

  it('answers a row it cannot read as no server, logged once a revision with the fields at fault', async () => {
    const { directory, pending, events, logger } = setup();
    const broken = { ...ROW, auth: { type: 'bogus' }, timeouts: { requestMs: 'slow' } };
    for (const revision of [1, 1, 2]) {
      const lookup = directory.bySlug('echo');
      pending.at(-1)!.resolve({ ...broken, revision });
      await expect(lookup).resolves.toBeUndefined();
      events.emit({ type: 'updated', serverId: ROW.id, slug: 'echo' });
    }
    expect(logger.warn.mock.calls).toEqual([
      [
        {
          serverId: ROW.id,
          slug: 'echo',
          problems: [
            { field: 'auth.type', message: expect.any(String) as unknown },
            { field: 'timeouts.requestMs', message: expect.any(String) as unknown },
          ],
        },
        expect.stringContaining('a stored server the gateway cannot read is not served'),
      ],
      [expect.objectContaining({ serverId: ROW.id }), expect.any(String)],
    ]);
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
