import type { PrismaService } from '../src/database/prisma.service';
import { startScratchPrisma } from './support/scratch-prisma';

/**
 * `PrismaService` hands out its queries through `createPrismaPromise` (src/database/prisma-promise.ts) instead of
 * Prisma's own factory: the queries must behave as Prisma's do, and a Prisma upgrade that stops asking the
 * factory must show here.
 */
describe('Prisma queries through createPrismaPromise', () => {
  let scratch: Awaited<ReturnType<typeof startScratchPrisma>> | undefined;
  let prisma: PrismaService;

  beforeAll(async () => {
    scratch = await startScratchPrisma();
    prisma = scratch.prisma;
  });

  afterAll(async () => {
    await scratch?.close();
  });

  beforeEach(async () => {
    await prisma.server.deleteMany();
  });

  function server(name: string): Parameters<PrismaService['server']['create']>[0] {
    const slug = name.split('/')[1]!;
    return { data: { name, slug, url: `https://${slug}.example/mcp` } };
  }

  it('is made by our factory: the operation is a plain property, not a getter', () => {
    const query = prisma.server.count();
    const descriptor = Object.getOwnPropertyDescriptor(query, 'spec');
    expect(descriptor).toBeDefined();
    expect(descriptor?.get).toBeUndefined();
    expect(descriptor?.value).toMatchObject({ action: 'count', model: 'Server' });
    expect(Object.prototype.toString.call(query)).toBe('[object PrismaPromise]');
  });

  it('runs a query once it is asked for its result, and only once', async () => {
    const create = prisma.server.create(server('com.example/lazy'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await prisma.server.count()).toBe(0);

    const [first, second] = await Promise.all([create, create.then((row) => row)]);
    expect(first.id).toBe(second.id);
    expect(await prisma.server.count()).toBe(1);
  });

  it('rejects a query Prisma refuses, through then, catch and finally alike', async () => {
    const bad = () => prisma.server.findMany({ where: { nope: true } } as never);
    await expect(bad()).rejects.toThrow(/nope/);
    await expect(bad().catch((error: Error) => error.name)).resolves.toBe('PrismaClientValidationError');
    await expect(bad().finally(() => undefined)).rejects.toThrow(/nope/);
  });

  it('runs a batch transaction, all or nothing', async () => {
    await prisma.$transaction([
      prisma.server.create(server('com.example/one')),
      prisma.server.create(server('com.example/two')),
    ]);
    expect(await prisma.server.count()).toBe(2);

    const duplicate = prisma.$transaction([
      prisma.server.create(server('com.example/three')),
      prisma.server.create(server('com.example/one')),
    ]);
    await expect(duplicate).rejects.toMatchObject({ code: 'P2002' });
    expect(
      (await prisma.server.findMany({ select: { slug: true }, orderBy: { slug: 'asc' } })).map((row) => row.slug),
    ).toEqual(['one', 'two']);
  });

  it('runs an interactive transaction, rolled back when it throws', async () => {
    await expect(
      prisma.$transaction(async (tx) => {
        await tx.server.create(server('com.example/inside'));
        expect(await tx.server.count()).toBe(1);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await prisma.server.count()).toBe(0);
  });
});
