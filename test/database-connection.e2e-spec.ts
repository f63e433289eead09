import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { PrismaService } from '../src/database/prisma.service';
import { startScratchPrisma } from './support/scratch-prisma';
import { insertServer } from './support/server-rows';

/**
 * The pool `openDatabase` opens, through Prisma as the gateway uses it. Prisma's query interpreter reads a row's
 * relations at once (`Promise.all`), which inside a transaction means several statements on its one connection.
 * pg 8 queues a statement given to a connection still executing another, and from the third on warns that pg 9 will
 * not ("Calling client.query() when the client is already executing a query is deprecated"). The warning, once per
 * process, reaches no `process.on('warning')` of a Jest test (its `process` is a copy): what is watched here is its
 * cause, pg's `Client.query` called on a connection that has not answered the statement before.
 */
describe('a pooled PostgreSQL connection', () => {
  let scratch: Awaited<ReturnType<typeof startScratchPrisma>> | undefined;
  let prisma: PrismaService;
  /** Statements pg's Client.query has been given and has not answered, by connection. */
  const unanswered = new Map<Client, number>();
  /** The most statements pg had at once on one connection. */
  let mostAtOnce = 0;

  const pgQuery = Client.prototype.query;

  beforeAll(async () => {
    // Before the pool opens its first connection, which takes its query from the prototype.
    Client.prototype.query = countingStatements(pgQuery);
    scratch = await startScratchPrisma();
    prisma = scratch.prisma;
  });

  afterAll(async () => {
    Client.prototype.query = pgQuery;
    await scratch?.close();
  });

  /** `query`, counting the statements each connection has been given and has not answered (`mostAtOnce`). */
  function countingStatements(query: (this: Client, ...args: unknown[]) => unknown): Client['query'] {
    return function (this: Client, ...args: unknown[]): unknown {
      unanswered.set(this, (unanswered.get(this) ?? 0) + 1);
      mostAtOnce = Math.max(mostAtOnce, unanswered.get(this)!);
      const answered = (): void => void unanswered.set(this, unanswered.get(this)! - 1);
      const callback = args.at(-1);
      if (typeof callback === 'function') {
        args[args.length - 1] = (...answer: unknown[]): unknown => {
          answered();
          return (callback as (...answer: unknown[]) => unknown)(...answer);
        };
        return query.apply(this, args);
      }
      const result = query.apply(this, args) as Promise<unknown>;
      result.then(answered, answered);
      return result;
    } as unknown as Client['query'];
  }

  it("hands pg one statement at a time: a transaction reads a server's discovery, items and changes at once", async () => {
    const server = await insertServer(prisma, 'conn');
    const syncedAt = new Date();
    await prisma.serverDiscovery.create({ data: { serverId: server.id, syncedAt, capabilities: { tools: {} } } });
    await prisma.serverItem.createMany({
      data: ['a', 'b'].map((name, position) => ({
        serverId: server.id,
        kind: 'tool',
        name,
        gatewayName: `${server.slug}__${name}`,
        definition: { name },
        fingerprint: randomUUID(),
        position,
      })),
    });
    await prisma.serverItemChange.create({
      data: { serverId: server.id, kind: 'tool', name: 'a', change: 'added', detectedAt: syncedAt },
    });

    mostAtOnce = 0;
    const read = await prisma.$transaction((tx) =>
      tx.server.findUnique({
        where: { id: server.id },
        select: { discovery: true, items: { orderBy: { position: 'asc' } }, itemChanges: true },
      }),
    );

    expect(read).toMatchObject({
      discovery: { serverId: server.id, capabilities: { tools: {} } },
      items: [{ name: 'a' }, { name: 'b' }],
      itemChanges: [{ name: 'a', change: 'added' }],
    });
    expect(mostAtOnce).toBe(1);
  });

  it('hands on the statements after one that failed, one at a time, each answered', async () => {
    const driver = await scratch!.connection.adapterFactory.connect();
    const transaction = await driver.startTransaction();
    const sql = (text: string) => transaction.queryRaw({ sql: text, args: [], argTypes: [] });
    mostAtOnce = 0;
    try {
      const settled = await Promise.allSettled([sql('SELECT 1 / 0'), sql('SELECT 2'), sql('SELECT 3')]);
      // The server answered each: the first failed, and the others found the transaction it aborted.
      expect(settled.map((outcome) => outcome.status === 'rejected' && messageOf(outcome.reason))).toEqual([
        expect.stringContaining('division by zero'),
        expect.stringContaining('current transaction is aborted'),
        expect.stringContaining('current transaction is aborted'),
      ]);
      expect(mostAtOnce).toBe(1);
    } finally {
      await transaction.executeRaw({ sql: 'ROLLBACK', args: [], argTypes: [] });
      await transaction.rollback();
      await driver.dispose();
    }
    await expect(prisma.$queryRaw`SELECT 4 AS four`).resolves.toEqual([{ four: 4 }]);
  });
});

/** A driver adapter error's message: the database's, under `cause`. */
function messageOf(error: unknown): string {
  const { cause } = error as { cause?: { originalMessage?: string; message?: string } };
  return cause?.originalMessage ?? cause?.message ?? String(error);
}
