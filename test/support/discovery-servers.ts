import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient, Server } from '../../src/generated/prisma/client';

/**
 * Server rows made straight through Prisma, for tests of features that read
 * the registry without going through its API. Every row gets a unique name
 * and slug; `overrides` set anything else.
 */
export async function createServerRow(
  prisma: PrismaClient,
  overrides: Partial<Prisma.ServerUncheckedCreateInput> = {},
): Promise<Server> {
  const unique = randomUUID().slice(0, 8);
  return prisma.server.create({
    data: {
      name: `io.test.discovery/server-${unique}`,
      slug: `t-${unique}`,
      url: 'http://127.0.0.1:9/mcp',
      transport: 'streamable-http',
      auth: { type: 'none' },
      timeouts: {},
      tags: [],
      allowedRoles: [],
      status: 'active',
      ...overrides,
    },
  });
}

/** Deletes the rows a test made; their discovery rows go with them. */
export async function deleteServerRows(prisma: PrismaClient, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await prisma.server.deleteMany({ where: { id: { in: [...ids] } } });
}
