import type { KeyValueStore } from '../src/redis/key-value-store';
import { MemoryStore } from '../src/redis/memory-store';
import { deploymentKey, PeriodClaim } from '../src/redis/period-claim';
import { RedisStore } from '../src/redis/redis-store';
import { createLogger } from '../src/logging/logger';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import Redis from 'ioredis';
import { eventually, sleep, waitUntil } from './support/eventually';
import { LogCapture } from './support/log-capture';
import { holdFreeLoopbackPort, holdPort } from './support/loopback';
import { REDIS_URL } from './support/services';
import { Redis5AuthFront } from './support/redis5-auth-front';
import { type RedisUser, redisUserWithout } from './support/redis-user';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, TcpProxy, withHostPort } from './support/tcp-proxy';

const logger = createLogger({ logLevel: 'silent' });

/** The same contract, held by the real Redis store and by the in-process one. */
describe.each([
  ['redis', () => RedisStore.connect(REDIS_URL, logger)],
  ['memory', () => Promise.resolve(new MemoryStore())],
] as const)('KeyValueStore (%s)', (_kind, open) => {
  let store: KeyValueStore;
  const key = (name: string): string => `test:${randomUUID()}:${name}`;

  beforeAll(async () => {
    store = await open();
  });

  afterAll(async () => {
    await store.close();
  });

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('sets, gets and deletes values', async () => {
    const k = key('value');
    expect(await store.get(k)).toBeNull();
    await store.set(k, 'one');
    expect(await store.get(k)).toBe('one');
    await store.del(k);
    expect(await store.get(k)).toBeNull();
  });

  it('expires values after their ttl', async () => {
    const k = key('ttl');
    await store.set(k, 'short', 50);
    expect(await store.get(k)).toBe('short');
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await store.get(k)).toBeNull();
  });

  it('moves the expiry of an existing key, and says when there is none', async () => {
    const k = key('expire');
    expect(await store.expire(k, 1_000)).toBe(false);
    await store.set(k, 'v', 50);
    expect(await store.expire(k, 1_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await store.get(k)).toBe('v');
    expect(await store.expire(k, 30)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.get(k)).toBeNull();
  });

  it('counts atomically, starting the ttl with the first increment only', async () => {
    const k = key('counter');
    const results = await Promise.all(Array.from({ length: 20 }, () => store.incrBy(k, 2, 150)));
    expect(results.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 2));
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.incrBy(k, 1, 150)).toBe(41);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await store.incrBy(k, 1, 150)).toBe(1);
  });

  it('rejects incrementing a value that is not a number', async () => {
    const k = key('text');
    await store.set(k, 'abc');
    await expect(store.incrBy(k, 1)).rejects.toThrow();
  });

  it('delivers published messages to subscribers until they unsubscribe', async () => {
    const channel = key('channel');
    const received: string[] = [];
    const unsubscribe = await store.subscribe(channel, (message) => received.push(message));
    await store.publish(channel, 'first');
    await waitFor(() => received.length === 1);
    await unsubscribe();
    await store.publish(channel, 'second');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received).toEqual(['first']);
  });
});

describe('PeriodClaim over the real Redis', () => {
  it('gives each period to exactly one of several instances, whichever asks first', async () => {
    const stores = await Promise.all([RedisStore.connect(REDIS_URL, logger), RedisStore.connect(REDIS_URL, logger)]);
    try {
      const name = `test-${randomUUID()}`;
      const [a, b] = stores.map((store) => new PeriodClaim(store, name)) as [PeriodClaim, PeriodClaim];
      const periodMs = 60_000;
      const start = Math.floor(Date.now() / periodMs) * periodMs;
      const first = await Promise.all([a.claim(periodMs, start + 10), b.claim(periodMs, start + 20)]);
      expect(first.filter(Boolean)).toHaveLength(1);
      // Later in the same period nobody gets it again; the next period is up for grabs once more.
      expect(await a.claim(periodMs, start + 30_000)).toBe(false);
      expect(await b.claim(periodMs, start + 30_000)).toBe(false);
      expect(await b.claim(periodMs, start + periodMs + 5)).toBe(true);
      expect(await a.claim(periodMs, start + periodMs + 6)).toBe(false);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('leaves the work to everyone when the store cannot be asked, and says why', async () => {
    const store = await RedisStore.connect(REDIS_URL, logger);
    const claim = new PeriodClaim(store, `test-${randomUUID()}`);
    const unasked: unknown[] = [];
    try {
      expect(await claim.ours(3_600_000, (error) => unasked.push(error))).toBe(true);
      expect(await claim.ours(3_600_000, (error) => unasked.push(error))).toBe(false);
      expect(unasked).toEqual([]);
    } finally {
      await store.close();
    }
    // Closed: the claim cannot be made.
    expect(await claim.ours(3_600_000, (error) => unasked.push(error))).toBe(true);
    expect(unasked).toHaveLength(1);
  });
});

describe('deploymentKey', () => {
  it('names a deployment by its database, whatever credentials a replica uses', () => {
    const key = (url: string): string => deploymentKey({ kind: 'postgres', url, poolSize: 10, queryTimeoutMs: 10_000 });
    expect(key('postgresql://a:x@db.example:5432/gw')).toBe(key('postgresql://b:y@db.example/gw?sslmode=require'));
    expect(key('postgresql://a@db.example:5432/gw')).not.toBe(key('postgresql://a@db.example:5432/gw_staging'));
    expect(key('postgresql://a@db.example:5432/gw')).not.toBe(key('postgresql://a@other.example:5432/gw'));
  });
});

describe('MemoryStore', () => {
  it('lets go of expired entries nobody reads again, and of none that live', async () => {
    const store = new MemoryStore();
    // Sessions their clients left (idle for a millisecond here), never read again.
    for (let i = 0; i < 3_000; i++) await store.set(`left:${i}`, 'x', 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 3_000; i++) await store.incrBy(`live:${i}`, 1, 60_000);
    expect(store.size).toBe(3_000);
    expect(await store.get('live:2999')).toBe('1');
    // Without a ttl an entry stays, however many come after it.
    await store.set('forever', 'kept');
    for (let i = 0; i < 10_000; i++) await store.set(`brief:${i}`, 'x', 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 10_000; i++) await store.set(`next:${i}`, 'x', 1);
    expect(await store.get('forever')).toBe('kept');
    expect(store.size).toBeLessThan(3_000 + 1 + 2 * 10_000);
    await store.close();
  });
});

describe('RedisStore at start', () => {
  const logs: string[] = [];
  const capturingLogger = createLogger(
    { logLevel: 'info' },
    new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        logs.push(chunk.toString('utf8'));
        done();
      },
    }),
  );
  const withPath = (path: string): string => {
    const url = new URL(REDIS_URL);
    url.pathname = path;
    return url.toString();
  };

  beforeEach(() => {
    logs.length = 0;
  });

  it('fails naming the refused connection when Redis does not answer, and logs no retry', async () => {
    await expect(RedisStore.connect('redis://127.0.0.1:1', capturingLogger)).rejects.toThrow(
      /^Redis at redis:\/\/127\.0\.0\.1:1 did not answer: connect ECONNREFUSED 127\.0\.0\.1:1$/,
    );
    expect(logs.join('')).not.toContain('retrying');
  });

  it('fails on a database number Redis does not have, instead of using db 0', async () => {
    const url = withPath('/99');
    const error = await startError(url, capturingLogger);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(
      `Redis at ${new URL(url).protocol}//${new URL(url).host} refused the connection: ERR DB index is out of range`,
    );
    expect(logs.join('')).not.toContain('retrying');
  });

  it("keeps the client and its subscriber on the URL's database", async () => {
    // ioredis takes options from the query: a name to find this store's connections by.
    const name = `kv-${randomUUID()}`;
    const store = await RedisStore.connect(`${withPath('/13')}?connectionName=${name}`, logger);
    try {
      await store.subscribe(`test:${name}`, () => undefined);
      const list = (await store.client.client('LIST')) as string;
      const ours = list.split('\n').filter((line) => line.includes(` name=${name} `));
      expect(ours).toHaveLength(2);
      for (const line of ours) expect(line).toContain(' db=13 ');
    } finally {
      await store.close();
    }
  });

  it('connects with a password Redis does not require, saying so once in the JSON log and nothing on the console', async () => {
    const password = `pw-${randomUUID()}`;
    const url = new URL(REDIS_URL);
    url.password = password;
    const consoleWarn = jest.spyOn(console, 'warn');
    try {
      const store = await RedisStore.connect(url.toString(), capturingLogger);
      try {
        // The subscriber's connection (its own AUTH) too.
        await store.subscribe(`test:${randomUUID()}`, () => undefined);
        await expect(store.ping()).resolves.toBeUndefined();
      } finally {
        await store.close();
      }
      expect(consoleWarn).not.toHaveBeenCalled();
    } finally {
      consoleWarn.mockRestore();
    }
    const lines = logs
      .flatMap((chunk) => chunk.split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, msg: expect.stringMatching(/REDIS_URL carries a password.*requires none/) }),
    ]);
    expect(logs.join('')).not.toContain(password);
  });

  it('connects to a Redis 5 that refuses the user name of REDIS_URL, saying so once in the JSON log and nothing on the console', async () => {
    const { host, port } = hostPortOf(REDIS_URL);
    const front = new Redis5AuthFront(host, port);
    await front.start();
    const address = `127.0.0.1:${front.port}`;
    const password = `pw-${randomUUID()}`;
    const consoleWarn = jest.spyOn(console, 'warn');
    try {
      const store = await RedisStore.connect(`redis://gateway:${password}@${address}`, capturingLogger);
      try {
        // The subscriber's connection (its own AUTH) too.
        await store.subscribe(`test:${randomUUID()}`, () => undefined);
        await expect(store.ping()).resolves.toBeUndefined();
      } finally {
        await store.close();
      }
      expect(front.refused).toBe(2);
      expect(consoleWarn).not.toHaveBeenCalled();
    } finally {
      consoleWarn.mockRestore();
      await front.stop();
    }
    const lines = logs
      .flatMap((chunk) => chunk.split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        redis: `redis://${address}`,
        msg: expect.stringMatching(/REDIS_URL names a user, but Redis .* refused AUTH with a user name/),
      }),
    ]);
    expect(logs.join('')).not.toContain(password);
  });

  describe('against a Redis with a password', () => {
    const password = `pw-${randomUUID()}`;
    let server: ChildProcess;
    let port: number;

    beforeAll(async () => {
      const held = await holdFreeLoopbackPort();
      port = held.port;
      try {
        server = spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--requirepass',
            password,
            '--save',
            '',
            '--appendonly',
            'no',
          ],
          {
            stdio: 'ignore',
          },
        );
        await waitForPort(port);
      } finally {
        held.release();
      }
    });

    afterAll(async () => {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    });

    it('fails naming the refused password, and never the password', async () => {
      const wrong = `wrong-${randomUUID()}`;
      const error = await startError(`redis://:${wrong}@127.0.0.1:${port}`, capturingLogger);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(
        new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${port} refused the connection: WRONGPASS `),
      );
      expect((error as Error).message).not.toContain(wrong);
      expect(logs.join('')).not.toContain(wrong);
      expect(logs.join('')).not.toContain('retrying');
    });

    it('connects with the right one', async () => {
      const store = await RedisStore.connect(`redis://:${password}@127.0.0.1:${port}`, logger);
      await expect(store.ping()).resolves.toBeUndefined();
      await store.close();
    });
  });
});

describe('RedisStore while Redis is away', () => {
  // Gone (its port let go of) or refusing on its port: ioredis may still call the subscriber's connection ready
  // while it takes no more writes.
  it.each([
    ['gone', (proxy: TcpProxy) => proxy.stop()],
    ['refusing connections', (proxy: TcpProxy) => proxy.refuse()],
  ])(
    'lets go of its subscriptions and closes, as a gateway shutting down during the outage does (Redis %s)',
    async (_how, away) => {
      const { host, port } = hostPortOf(REDIS_URL);
      const proxy = new TcpProxy(host, port);
      await proxy.start();
      const store = await RedisStore.connect(withHostPort(REDIS_URL, proxy.port), logger);
      try {
        const unsubscribe = await store.subscribe(`test:${randomUUID()}`, () => undefined);
        await away(proxy);
        await eventually(() => expect(store.ping()).rejects.toThrow());

        await expect(unsubscribe()).resolves.toBeUndefined();
        await expect(store.close()).resolves.toBeUndefined();
      } finally {
        await proxy.stop();
      }
    },
  );
});

/**
 * Redis behind a relay that holds its answers back: connected, and silent, as a paused Redis or a black-holed path
 * is. A command times out after the command timeout, but ioredis keeps it queued until the connection closes.
 */
describe('RedisStore while Redis does not answer', () => {
  const { relay, logs, capturingLogger, direct } = redisBehindStallableRelay();

  it('closes a connection whose commands get no answer, holding none of them, and comes back with its subscriptions', async () => {
    const store = await RedisStore.connect(withHostPort(REDIS_URL, relay.port), capturingLogger, {
      commandTimeoutMs: 100,
    });
    try {
      const channel = `test:${randomUUID()}`;
      const received: string[] = [];
      await store.subscribe(channel, (message) => received.push(message));
      const subscribers = async () => ((await direct.pubsub('NUMSUB', channel)) as [string, number])[1];
      expect(await subscribers()).toBe(1);
      let closes = 0;
      let reconnects = 0;
      store.client.on('close', () => closes++);
      store.client.on('reconnecting', () => reconnects++);

      relay.stall();
      const sent = Array.from({ length: 200 }, (_, i) => store.get(`test:${randomUUID()}:${i}`));
      for (const result of await Promise.allSettled(sent)) expect(result.status).toBe('rejected');
      // The connection is closed while Redis is still silent, and what it held is let go of.
      await waitUntil(() => closes > 0, 'the silent connection is closed');
      const queued = () => store.client.commandQueue.toArray().filter(({ command }) => command.name === 'get');
      expect(queued()).toEqual([]);
      // More commands meanwhile fail at once, at every attempt to connect again: none of them waits in the queue.
      await waitUntil(() => reconnects >= 3, 'the client tried to connect three more times');
      for (let i = 0; i < 100; i++) await expect(store.get(`test:${randomUUID()}`)).rejects.toThrow();
      expect(queued()).toEqual([]);
      // The subscriber, asked a PING it got no answer to either, was closed too: Redis holds no subscription of it.
      await eventually(async () => expect(await subscribers()).toBe(0));
      // Each connection says it once, however often it tried again.
      expect(logs.filter((line) => line.msg === 'Redis connection lost; retrying')).toHaveLength(2);

      relay.resume();
      await eventually(() => store.ping());
      await eventually(async () => {
        await direct.publish(channel, 'back');
        expect(received).toContain('back');
      });
      expect(await subscribers()).toBe(1);
      await eventually(() => expect(logs.filter((line) => line.msg === 'Redis connection restored')).toHaveLength(2));
    } finally {
      relay.resume();
      await store.close();
    }
  }, 60_000);

  it('leaves no timer of a connection lost while a command waited, that would close the connection replacing it', async () => {
    // Closed for silence after five command timeouts: 1 s after a command.
    const store = await RedisStore.connect(withHostPort(REDIS_URL, relay.port), capturingLogger, {
      commandTimeoutMs: 200,
    });
    try {
      let closes = 0;
      store.client.on('close', () => closes++);
      relay.stall();
      await expect(store.get(`test:${randomUUID()}`)).rejects.toThrow('Command timed out');
      // Lost before it was closed for silence, the command still waiting.
      relay.cut();
      await waitUntil(() => closes === 1, 'the connection is lost');
      await eventually(() => store.ping());
      // Past the lost connection's silence limit: the connection that replaced it is still there.
      await sleep(1_500);
      await store.ping();
      expect(closes).toBe(1);
    } finally {
      relay.resume();
      await store.close();
    }
  });
});

/**
 * The subscriber's path alone goes silent (a NAT or firewall that dropped the idle connection, a proxy that lost its
 * other side) while the client's works: the relay holds back the answers of the subscriber's connection alone, the
 * latest it took (the client's came first).
 */
describe("RedisStore when its subscriber's path alone goes silent", () => {
  const { relay, logs, capturingLogger, direct } = redisBehindStallableRelay();

  it('replaces it, subscribes its channels again, and tells each subscription that messages went by unheard', async () => {
    const store = await RedisStore.connect(withHostPort(REDIS_URL, relay.port), capturingLogger, {
      commandTimeoutMs: 100,
    });
    try {
      const [channel, other] = [`test:${randomUUID()}`, `test:${randomUUID()}`];
      const received: string[] = [];
      let missed = 0;
      let otherMissed = 0;
      await store.subscribe(
        channel,
        (message) => received.push(message),
        () => missed++,
      );
      await store.subscribe(
        other,
        () => undefined,
        () => otherMissed++,
      );
      await store.subscribe(other, () => undefined);
      await direct.publish(channel, 'before');
      await waitUntil(() => received.includes('before'), 'the subscription hears a message');

      relay.stallLatest();
      await direct.publish(channel, 'unheard');
      await waitUntil(() => missed > 0, 'the subscription is told it missed messages');
      expect(otherMissed).toBe(1);
      await eventually(async () => {
        await direct.publish(channel, 'after');
        expect(received).toContain('after');
      });
      expect(received).not.toContain('unheard');
      expect(missed).toBe(1);
      // The client's connection went on all along: it lost nothing, and says nothing.
      const key = `test:${randomUUID()}`;
      await store.set(key, 'kept');
      expect(await store.get(key)).toBe('kept');
      const said = (msg: string) => logs.filter((line) => line.msg === msg).map(({ connection }) => connection);
      expect(said('Redis connection lost; retrying')).toEqual(['subscriber']);
      await eventually(() => expect(said('Redis connection restored')).toEqual(['subscriber']));
    } finally {
      relay.resume();
      await store.close();
    }
  }, 60_000);
});

describe('RedisStore when Redis refuses a SUBSCRIBE', () => {
  let user: RedisUser;
  let admin: Redis;

  beforeAll(async () => {
    user = await redisUserWithout('subscribe');
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    admin.disconnect();
    await user.remove();
  });

  it('fails everyone subscribing meanwhile, and sends it again for the next subscription', async () => {
    const store = await RedisStore.connect(user.url, logger);
    try {
      const channel = `test:${randomUUID()}`;
      const received: string[] = [];
      const attempts = [
        store.subscribe(channel, () => undefined),
        store.subscribe(channel, (message) => received.push(message)),
      ];
      for (const attempt of await Promise.allSettled(attempts)) {
        expect(attempt).toMatchObject({
          status: 'rejected',
          reason: expect.objectContaining({ message: expect.stringMatching(/^NOPERM/) }),
        });
      }

      await admin.call('ACL', 'SETUSER', new URL(user.url).username, '+subscribe');
      await store.subscribe(channel, (message) => received.push(message));
      await eventually(async () => {
        await admin.publish(channel, 'heard');
        expect(received).toContain('heard');
      });
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore after a reconnect', () => {
  const capture = new LogCapture();
  const logs = capture.lines;
  const capturingLogger = createLogger({ logLevel: 'info' }, capture.stream);
  let port: number;
  let server: ChildProcess | undefined;

  /** A Redis of its own on `port`, with `databases` databases and nothing kept across restarts. */
  async function startRedis(databases: number): Promise<void> {
    server = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--databases',
        String(databases),
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
  }

  async function stopRedis(): Promise<void> {
    const running = server;
    server = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  }

  /** Starts Redis again on its port, which no other process can take while it is down (holdPort). */
  async function restartRedis(databases: number): Promise<void> {
    await stopRedis();
    const held = await holdPort(port);
    try {
      await startRedis(databases);
    } finally {
      held.release();
    }
  }

  beforeAll(async () => {
    const held = await holdFreeLoopbackPort();
    port = held.port;
    try {
      await startRedis(16);
    } finally {
      held.release();
    }
  });

  afterAll(stopRedis);

  it("does not go on on db 0 when Redis, restarted with fewer databases, refuses the URL's: it counts as down, says why once, and comes back", async () => {
    const store = await RedisStore.connect(`redis://127.0.0.1:${port}/13`, capturingLogger);
    const db0 = new Redis(`redis://127.0.0.1:${port}/0`, { lazyConnect: true, retryStrategy: () => 200 });
    try {
      const received: string[] = [];
      await store.subscribe('test:select', (message) => received.push(message));
      await store.set('test:before', '1');

      await restartRedis(4);
      await db0.connect();
      const refusals = (): Record<string, unknown>[] =>
        logs.filter(
          (line) =>
            line.msg === "Redis refused the URL's database: not using the connection (it would be on db 0); retrying",
        );
      // The client and its subscriber each say it once, however often they retry.
      await eventually(() => expect(refusals()).toHaveLength(2));
      for (let attempt = 0; attempt < 10; attempt++) {
        await expect(store.ping()).rejects.toThrow();
        await expect(store.set(`test:during-${attempt}`, '1')).rejects.toThrow();
        await sleep(200);
      }
      expect(refusals()).toHaveLength(2);
      expect(refusals()[0]).toMatchObject({ db: 13, err: { message: 'ERR DB index is out of range' } });
      expect(await db0.dbsize()).toBe(0);

      await restartRedis(16);
      await eventually(() => store.ping());
      await store.set('test:after', '1');
      await db0.select(13);
      expect(await db0.get('test:after')).toBe('1');
      await eventually(async () => {
        await store.publish('test:select', 'back');
        expect(received).toContain('back');
      });
      expect(logs.some((line) => line.msg === 'Redis connection restored')).toBe(true);
    } finally {
      db0.disconnect();
      await store.close();
    }
  }, 60_000);
});

/** What RedisStore.connect fails with; a store that connects all the same is closed, and there is no error. */
async function startError(url: string, logger: Logger): Promise<unknown> {
  try {
    await (await RedisStore.connect(url, logger)).close();
    return undefined;
  } catch (error) {
    return error;
  }
}

async function waitForPort(port: number): Promise<void> {
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * For a describe block: Redis behind a `StallableProxy` (started before its tests, stopped after), a logger whose JSON
 * lines are collected in `logs`, and a connection of its own straight to Redis (`direct`).
 */
function redisBehindStallableRelay(): {
  relay: StallableProxy;
  logs: LogCapture['lines'];
  capturingLogger: ReturnType<typeof createLogger>;
  direct: Redis;
} {
  const { host, port } = hostPortOf(REDIS_URL);
  const relay = new StallableProxy(host, port);
  const capture = new LogCapture();
  const capturingLogger = createLogger({ logLevel: 'info' }, capture.stream);
  const direct = new Redis(REDIS_URL, { lazyConnect: true });

  beforeAll(async () => {
    await relay.start();
    await direct.connect();
  });

  afterAll(async () => {
    direct.disconnect();
    await relay.stop();
  });
  return { relay, logs: capture.lines, capturingLogger, direct };
}
