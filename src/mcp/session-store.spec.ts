import { MemoryStore } from '../redis/memory-store';
import { type McpSession, McpSessionStore } from './session-store';

const IDLE_MS = 60_000;

function session(): McpSession {
  return {
    id: McpSessionStore.newId(),
    principalKey: 'tid:oid',
    protocolVersion: '2025-11-25',
    initializeParams: {},
    upstreamSessions: {},
    createdAt: Date.now(),
  };
}

describe('McpSessionStore.openSessions', () => {
  let store: McpSessionStore;

  beforeEach(async () => {
    store = new McpSessionStore(new MemoryStore(), IDLE_MS);
    await store.start();
  });

  afterEach(async () => {
    await store.stop();
  });

  it('counts sessions created or served here until deleted or idle past the expiry', async () => {
    const [a, b] = [session(), session()];
    await store.create(a);
    await store.create(b);
    expect(store.openSessions()).toBe(2);
    await store.delete(a.id);
    expect(store.openSessions()).toBe(1);
    expect(await store.get(a.id)).toBeUndefined();
    expect(store.openSessions()).toBe(1);
    expect(store.openSessions(Date.now() + IDLE_MS + 1)).toBe(0);
  });

  it('counts a session another replica created once this one serves it', async () => {
    const shared = new MemoryStore();
    const here = new McpSessionStore(shared, IDLE_MS);
    const there = new McpSessionStore(shared, IDLE_MS);
    await Promise.all([here.start(), there.start()]);
    try {
      const s = session();
      await there.create(s);
      expect(here.openSessions()).toBe(0);
      expect(await here.get(s.id)).toMatchObject({ id: s.id });
      expect(here.openSessions()).toBe(1);
      // Deleted on the other replica: this one hears it.
      await there.delete(s.id);
      expect(here.openSessions()).toBe(0);
    } finally {
      await Promise.all([here.stop(), there.stop()]);
    }
  });
});

describe('McpSessionStore.get', () => {
  afterEach(() => jest.restoreAllMocks());

  it('answers a session cached here at once, and with a promise while its expiry is pushed back', async () => {
    const shared = new MemoryStore();
    // An idle expiry whose quarter (2 s) comes before the cached copy's 5 s.
    const store = new McpSessionStore(shared, 8_000);
    const read = jest.spyOn(shared, 'get');
    const expire = jest.spyOn(shared, 'expire');
    const s = session();
    await store.create(s);
    const cached = store.get(s.id);
    expect(cached).not.toBeInstanceOf(Promise);
    expect(cached).toMatchObject({ id: s.id });
    jest.spyOn(Date, 'now').mockReturnValue(Date.now() + 2_001);
    const touched = store.get(s.id);
    expect(touched).toBeInstanceOf(Promise);
    await expect(touched).resolves.toMatchObject({ id: s.id });
    expect(expire).toHaveBeenCalledTimes(1);
    expect(store.get(s.id)).toMatchObject({ id: s.id });
    expect(expire).toHaveBeenCalledTimes(1);
    expect(read).not.toHaveBeenCalled();
  });
});
