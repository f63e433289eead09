import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { PrismaService } from '../../src/database/prisma.service';
import type { Prisma } from '../../src/generated/prisma/client';

export interface StoredServer {
  id: string;
  slug: string;
  name: string;
}

/**
 * Writes a `servers` row straight through the gateway's Prisma client (the
 * registry API is not what these tests are about), unique per call.
 */
export async function insertServer(
  app: INestApplication,
  overrides: Partial<Prisma.ServerCreateInput> = {},
): Promise<StoredServer> {
  const suffix = randomBytes(4).toString('hex');
  const row = await app.get(PrismaService).server.create({
    data: {
      name: `io.test-auth/srv-${suffix}`,
      slug: `auth-${suffix}`,
      url: 'https://203.0.113.10/mcp',
      ...overrides,
    },
    select: { id: true, slug: true, name: true },
  });
  return row;
}
