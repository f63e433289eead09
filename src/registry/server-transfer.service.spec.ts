import type { PinoLogger } from 'nestjs-pino';
import { UrlGuard } from '../upstream/url-guard';
import { RegistryEvents } from './registry-events';
import { RegistryService } from './registry.service';
import type { ServerFields, ServerRecord } from './server-record';
import type { ServerRepository } from './server.repository';
import { ServerTransferService } from './server-transfer.service';

/** A Prisma known-request error as the client throws it (the repository lets these through). */
function prismaError(code: string, sqlState?: string): Error {
  const error = new Error(`prisma ${code}`);
  error.name = 'PrismaClientKnownRequestError';
  const cause = sqlState ? { driverAdapterError: { cause: { originalCode: sqlState, kind: 'postgres' } } } : {};
  return Object.assign(error, { code, meta: cause });
}

function stored(fields: ServerFields): ServerRecord {
  const at = new Date('2026-01-01T00:00:00.000Z');
  return { ...fields, id: '0b9a3c1e-6f1d-4c84-9d4b-2f8a1e7c5d90', revision: 1, createdAt: at, updatedAt: at };
}

const document = (last: string) => ({
  name: `io.example/${last}`,
  version: '1.0.0',
  remotes: [{ type: 'streamable-http', url: 'https://203.0.113.10/mcp' }],
});

describe('ServerTransferService.import, when a write throws', () => {
  const logged: unknown[] = [];
  let failures: Map<string, Error>;
  let service: ServerTransferService;

  beforeEach(() => {
    logged.length = 0;
    failures = new Map();
    const repository = {
      findByRef: jest.fn().mockResolvedValue(undefined),
      slugsStartingWith: jest.fn().mockResolvedValue(new Set<string>()),
      create: jest.fn((fields: ServerFields) => {
        const failure = failures.get(fields.name);
        return failure ? Promise.reject(failure) : Promise.resolve(stored(fields));
      }),
    };
    const guard = new UrlGuard({ allowedHosts: [], deniedHosts: [] }, () => Promise.resolve(['203.0.113.10']));
    const registry = new RegistryService(repository as unknown as ServerRepository, guard, new RegistryEvents());
    const logger = { error: (entry: unknown) => logged.push(entry) } as unknown as PinoLogger;
    service = new ServerTransferService(registry, logger);
  });

  it('fails only that document on an unexpected error, logged with the error id the report names', async () => {
    failures.set('io.example/broken', new TypeError('boom'));
    failures.set('io.example/nul', prismaError('P2039', '22021'));
    const report = await service.import([document('a'), document('broken'), document('nul'), document('b')]);

    expect(report.results.map((item) => item.result)).toEqual(['created', 'failed', 'failed', 'created']);
    expect(report).toMatchObject({ created: 2, failed: 2 });
    const [broken, nul] = [report.results[1], report.results[2]];
    const errorId = /error id ([0-9a-f-]{36})/.exec(broken?.errors?.[0]?.message ?? '')?.[1];
    expect(errorId).toBeDefined();
    expect(broken?.errors?.[0]?.message).not.toContain('boom');
    expect(logged).toEqual([expect.objectContaining({ errorId, err: expect.any(TypeError) })]);
    expect(nul?.errors).toEqual([{ field: '(document)', message: expect.stringContaining('cannot store') }]);
  });

  it('stops at a database too busy to take the write, reporting every later document as not tried', async () => {
    failures.set('io.example/busy', prismaError('P2024'));
    const report = await service.import([document('a'), document('busy'), document('b'), document('c')]);

    expect(report.results.map((item) => [item.index, item.result])).toEqual([
      [0, 'created'],
      [1, 'failed'],
      [2, 'failed'],
      [3, 'failed'],
    ]);
    expect(report.results[1]?.errors?.[0]?.message).toMatch(/busy/);
    expect(report.results[3]).toMatchObject({ name: 'io.example/c', errors: [{ message: /not imported/ }] });
    expect(logged).toEqual([]);
  });
});
