import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { SqlDriverAdapter } from '@prisma/driver-adapter-utils';
import { PrismaClient } from '../generated/prisma/client';
import type { DatabaseConnection } from './database';
import { createPrismaPromise } from './prisma-promise';

/** The one Prisma client of the process, over the connection's pool. Only repositories use it. */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleInit, OnModuleDestroy {
  private driver?: Promise<SqlDriverAdapter>;

  constructor(private readonly connection: DatabaseConnection) {
    // `minimal` is what Prisma picks by itself under NODE_ENV=production (the image); anything else made it capture
    // a stack trace for every query, for the code frame of an error message that the API never shows (4,000
    // `findMany` of 30 servers, three alternating pairs: 2.48–2.95 s against 2.77–3.02 s).
    super({ adapter: connection.adapterFactory, errorFormat: 'minimal' });
    (this as unknown as { _createPrismaPromise: typeof createPrismaPromise })._createPrismaPromise =
      createPrismaPromise;
  }

  /**
   * One statement straight through the driver adapter, on the same pool (or PGlite), with text parameters
   * (cast them in the SQL) and rows as arrays of column values. For a statement with a large parameter: Prisma
   * serializes raw parameters to JSON and parses them back before the driver sees them, which for the audit
   * writer's batches (hundreds of kilobytes in one parameter) cost more CPU than the insert itself.
   */
  async queryRows(sql: string, args: (string | null)[]): Promise<unknown[][]> {
    this.driver ??= this.connection.adapterFactory.connect();
    const driver = await this.driver;
    const result = await driver.queryRaw({
      sql,
      args,
      argTypes: args.map(() => ({ scalarType: 'string', arity: 'scalar' })),
    });
    return result.rows;
  }

  async onModuleInit(): Promise<void> {
    await this.$connect();
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }

  async ping(): Promise<void> {
    await this.$queryRaw`SELECT 1`;
  }
}
