import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient, Server } from '../../src/generated/prisma/client';

export type ServerRow = Server;

/** A server row made straight through Prisma, named `io.test.{prefix}/server-{random}` with slug `{prefix}-{random}`. */
export async function insertServer(
  prisma: PrismaClient,
  prefix: string,
  overrides: Partial<Prisma.ServerUncheckedCreateInput> = {},
): Promise<ServerRow> {
  const unique = randomUUID().slice(0, 8);
  return prisma.server.create({
    data: {
      name: `io.test.${prefix}/server-${unique}`,
      slug: `${prefix}-${unique}`,
      url: 'http://127.0.0.1:9/mcp',
      ...overrides,
    },
  });
}

export async function deleteServers(prisma: PrismaClient, rows: readonly { id: string }[]): Promise<void> {
  if (rows.length > 0) await prisma.server.deleteMany({ where: { id: { in: rows.map((row) => row.id) } } });
}
