import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { DatabaseConnection } from './database';
import { PrismaService } from './prisma.service';

export const DATABASE_CONNECTION = Symbol('DATABASE_CONNECTION');

@Global()
@Module({})
export class DatabaseModule {
  /** The connection is opened (and migrated) before Nest starts; the module only hands it out. */
  static forRoot(connection: DatabaseConnection): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        { provide: DATABASE_CONNECTION, useValue: connection },
        { provide: PrismaService, useFactory: () => new PrismaService(connection) },
      ],
      exports: [DATABASE_CONNECTION, PrismaService],
    };
  }
}
