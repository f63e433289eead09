import { Client } from 'pg';
import request from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import { eventually } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { token } from './support/registry';
import { deleteServers, insertServer, type ServerRow } from './support/server-rows';
import { POSTGRES_URL } from './support/services';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, withHostPort } from './support/tcp-proxy';

// Under Prisma's 5 s for an interactive transaction, with the 1 s the client waits past it.
const QUERY_TIMEOUT_MS = 2_000;

/**
 * A gateway whose PostgreSQL is reached through a relay that can stop answering, its connections named so that
 * `pg_stat_activity` tells them apart from those of other suites; and two connections straight to PostgreSQL: one
 * to hold row locks, one to watch the gateway's sessions (outside a transaction, which would see one snapshot of
 * `pg_stat_activity` throughout).
 */
function stallableGateway() {
  const relay = new StallableProxy(hostPortOf(POSTGRES_URL).host, hostPortOf(POSTGRES_URL).port);
  const applicationName = `gw-dbtimeout-${token()}`;
  const holder = new Client({ connectionString: POSTGRES_URL });
  const observer = new Client({ connectionString: POSTGRES_URL });
  const state = { gw: undefined as TestGateway | undefined };
  const rows: ServerRow[] = [];
  const prisma = (): PrismaService => state.gw!.gateway.app.get(PrismaService);

  beforeAll(async () => {
    await relay.start();
    await holder.connect();
    await observer.connect();
    const url = new URL(withHostPort(POSTGRES_URL, relay.port));
    url.searchParams.set('application_name', applicationName);
    state.gw = await startTestGateway('services', {
      DATABASE_URL: url.toString(),
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      // One connection, which the catalog's reads (every 2 s) keep in use: a connection handed back with its
      // transaction open would stay so.
      DATABASE_POOL_SIZE: '1',
    });
  });

  afterAll(async () => {
    relay.resume();
    await holder.end();
    await observer.end();
    if (state.gw) await deleteServers(prisma(), rows);
    await state.gw?.close();
    await relay.stop();
  });

  /** The gateway's sessions in PostgreSQL that are in a transaction or wait for a lock. */
  const busySessions = async (): Promise<{ state: string; wait: string | null; query: string }[]> => {
    const { rows } = await observer.query<{ state: string; wait: string | null; query: string }>(
      `SELECT state, wait_event_type AS wait, query FROM pg_stat_activity
        WHERE application_name = $1 AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock')`,
      [applicationName],
    );
    return rows;
  };

  return {
    relay,
    holder,
    observer,
    busySessions,
    prisma,
    get url(): string {
      return state.gw!.url;
    },
    /** A server row made straight in the table: registering it would start a discovery sync, which writes to it. */
    insertServer: async (): Promise<ServerRow> => {
      const row = await insertServer(prisma(), 'dbt');
      rows.push(row);
      return row;
    },
  };
}

describe('PostgreSQL that stops answering, behind a stallable relay', () => {
  const db = stallableGateway();

  it('answers /api/v1 503 service_unavailable while the stall lasts, and serves again once it ends', async () => {
    await request(db.url).get('/api/v1/servers').expect(200);
    db.relay.stall();
    try {
      // The first takes the pool's connection, whose statement is never answered; the next ones need a new
      // connection, whose handshake is never answered either.
      for (let i = 0; i < 3; i++) {
        const res = await request(db.url).get('/api/v1/servers').expect(503);
        expect(res.body).toMatchObject({ code: 'service_unavailable', detail: expect.stringContaining('database') });
        expect(res.body).not.toHaveProperty('errorId');
      }
    } finally {
      db.relay.resume();
    }
    await request(db.url).get('/api/v1/servers').expect(200);
  });

  it('drops a connection whose transaction stalled, rather than hand it on with the transaction open', async () => {
    const { id } = await db.insertServer();
    // The update's transaction waits for the row; once it is stalled, the row is let go, so the update's statement
    // completes in PostgreSQL (its transaction open, holding the row) while its answer never reaches the gateway.
    await db.holder.query('BEGIN');
    await db.holder.query('SELECT id FROM servers WHERE id = $1 FOR UPDATE', [id]);
    const answered = request(db.url)
      .patch(`/api/v1/servers/${id}`)
      .send({ title: 'Stalled' })
      .then((res) => res);
    await eventually(async () =>
      expect(await db.busySessions()).toContainEqual({
        state: 'active',
        wait: 'Lock',
        query: expect.stringContaining('FOR UPDATE'),
      }),
    );
    db.relay.stall();
    try {
      await db.holder.query('ROLLBACK');
      const res = await answered;
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ code: 'service_unavailable' });
    } finally {
      db.relay.resume();
    }
    // Its connection closed, PostgreSQL ends the transaction; handed back to the pool, it stayed open for good
    // (the next statements on that connection ran inside it), holding the row.
    await eventually(async () => expect(await db.busySessions()).toEqual([]));
    await request(db.url).patch(`/api/v1/servers/${id}`).send({ title: 'Updated' }).expect(200);
    const { rows } = await db.observer.query<{ title: string }>('SELECT title FROM servers WHERE id = $1', [id]);
    expect(rows).toEqual([{ title: 'Updated' }]);
  });

  it('answers an update waiting for a row another connection holds, and PostgreSQL stops the wait', async () => {
    const { id } = await db.insertServer();
    await db.holder.query('BEGIN');
    try {
      await db.holder.query('SELECT id FROM servers WHERE id = $1 FOR UPDATE', [id]);
      const res = await request(db.url).patch(`/api/v1/servers/${id}`).send({ title: 'Waited' }).expect(503);
      expect(res.body).toMatchObject({ code: 'service_unavailable', detail: expect.stringContaining('database') });
      expect(res.body).not.toHaveProperty('errorId');
      // Cancelled by PostgreSQL (statement_timeout), not only given up on by the gateway: nothing of the gateway's
      // still waits for the row or holds a transaction open.
      expect(await db.busySessions()).toEqual([]);
    } finally {
      await db.holder.query('ROLLBACK');
    }
    await request(db.url).patch(`/api/v1/servers/${id}`).send({ title: 'Updated' }).expect(200);
  });

  it('ends a session left idle inside a transaction, freeing its locks, and the pool serves on a new connection', async () => {
    const { id } = await db.insertServer();
    let letGo!: () => void;
    const abandoned = new Promise<void>((resolve) => (letGo = resolve));
    // A transaction that locks a row and then waits, as a hung handler's would: its session sits idle in it.
    const transaction = db.prisma().$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT id FROM servers WHERE id = ${id}::uuid FOR UPDATE`;
        await abandoned;
        await tx.$queryRaw`SELECT 1`;
      },
      { timeout: 600_000 },
    );
    try {
      await eventually(async () =>
        expect(await db.busySessions()).toContainEqual(expect.objectContaining({ state: 'idle in transaction' })),
      );
      // PostgreSQL ends the session (idle_in_transaction_session_timeout), and with it the transaction and its lock.
      await eventually(async () => expect(await db.busySessions()).toEqual([]));
    } finally {
      letGo();
    }
    await expect(transaction).rejects.toThrow();
    // The pool's one connection was that session: the next request gets a new one, and the row is free.
    await request(db.url).patch(`/api/v1/servers/${id}`).send({ title: 'Freed' }).expect(200);
    const { rows } = await db.observer.query<{ title: string }>('SELECT title FROM servers WHERE id = $1', [id]);
    expect(rows).toEqual([{ title: 'Freed' }]);
  });
});
