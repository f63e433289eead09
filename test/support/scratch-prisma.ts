import { type DatabaseConnection, openDatabase } from '../../src/database/database';
import { applyMigrations, MIGRATIONS_DIR } from '../../src/database/migrator';
import { PrismaService } from '../../src/database/prisma.service';
import { createLogger } from '../../src/logging/logger';
import { createScratchDatabase } from './services';

/**
 * A fresh, migrated PostgreSQL database for one test file, reached through Prisma over the pool of `connection` (as
 * the gateway reaches its own) and at `url`; `close()` drops it.
 */
export async function startScratchPrisma(): Promise<{
  prisma: PrismaService;
  connection: DatabaseConnection;
  url: string;
  close: () => Promise<void>;
}> {
  const database = await createScratchDatabase();
  const connection = await openDatabase(
    { kind: 'postgres', url: database.url, poolSize: 2, queryTimeoutMs: 10_000 },
    createLogger({ logLevel: 'silent' }),
  );
  await applyMigrations(connection.adapterFactory, MIGRATIONS_DIR);
  const prisma = new PrismaService(connection);
  await prisma.onModuleInit();
  return {
    prisma,
    connection,
    url: database.url,
    close: async () => {
      await prisma.onModuleDestroy();
      await connection.close();
      await database.drop();
    },
  };
}
