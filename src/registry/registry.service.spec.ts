import { DomainError } from '../common/domain-error';
import { UrlGuard } from '../upstream/url-guard';
import { encodeCursor } from './cursor';
import { etagOf } from './etag';
import { type RegistryEvent, RegistryEvents } from './registry-events';
import { DuplicateServerError } from './registry.errors';
import { RegistryService } from './registry.service';
import type { ServerFields, ServerRecord } from './server-record';
import type { ServerRepository } from './server.repository';
import { serverInputSchema } from './server.dto';

type Repository = jest.Mocked<
  Pick<ServerRepository, 'findByRef' | 'readByRef' | 'list' | 'slugsStartingWith' | 'create' | 'update' | 'delete'>
>;

function record(overrides: Partial<ServerRecord> = {}): ServerRecord {
  return {
    id: '0b9a3c1e-6f1d-4c84-9d4b-2f8a1e7c5d90',
    name: 'com.contoso/github',
    slug: 'github',
    title: 'GitHub',
    description: 'Code',
    version: '1.0.0',
    url: 'https://203.0.113.10/mcp',
    transport: 'streamable-http',
    auth: { type: 'none' },
    tags: [],
    status: 'active',
    statusMessage: null,
    allowedRoles: [],
    timeouts: {},
    toolRules: {},
    revision: 1,
    createdAt: new Date('2026-01-01T00:00:00.000Z'),
    updatedAt: new Date('2026-01-01T00:00:00.000Z'),
    ...overrides,
  };
}

describe('RegistryService', () => {
  let repository: Repository;
  let events: RegistryEvent[];
  let service: RegistryService;

  beforeEach(() => {
    repository = {
      findByRef: jest.fn(),
      // A write reads the row as a lookup does (these tests' rows are all readable).
      readByRef: jest.fn((ref) => repository.findByRef(ref)),
      list: jest.fn(),
      slugsStartingWith: jest.fn().mockResolvedValue(new Set<string>()),
      create: jest.fn((fields: ServerFields) => Promise.resolve(record({ ...fields }))),
      update: jest.fn(),
      delete: jest.fn(),
    };
    const registryEvents = new RegistryEvents();
    events = [];
    registryEvents.on((event) => events.push(event));
    const guard = new UrlGuard({ allowedHosts: [], deniedHosts: [] }, () => Promise.resolve(['203.0.113.10']));
    service = new RegistryService(repository as unknown as ServerRepository, guard, registryEvents);
  });

  /** Runs the change the service hands the repository against `current`, as the repository would. */
  function updatingFrom(current: ServerRecord): void {
    repository.findByRef.mockResolvedValue(current);
    repository.update.mockImplementation((_id, change) => {
      const next = change(current);
      return Promise.resolve({ changed: true, server: { ...current, ...next, revision: current.revision + 1 } });
    });
  }

  describe('create', () => {
    it('refuses a URL the policy refuses, before touching the repository', async () => {
      const input = serverInputSchema.parse({ name: 'io.x/y', url: 'http://169.254.169.254/' });
      await expect(service.create(input)).rejects.toMatchObject({
        code: 'validation_error',
        fieldErrors: [{ field: 'url', message: expect.stringContaining('link-local') }],
      });
      expect(repository.create).not.toHaveBeenCalled();
      expect(events).toEqual([]);
    });

    it('derives a free slug and derives again when a concurrent registration takes it', async () => {
      repository.slugsStartingWith
        .mockResolvedValueOnce(new Set(['github']))
        .mockResolvedValueOnce(new Set(['github', 'github-2']));
      repository.create.mockRejectedValueOnce(new DuplicateServerError('slug'));
      const created = await service.create(
        serverInputSchema.parse({ name: 'com.contoso/GitHub', url: 'https://203.0.113.10/' }),
      );
      expect(repository.create.mock.calls.map(([fields]) => fields.slug)).toEqual(['github-2', 'github-3']);
      expect(created.slug).toBe('github-3');
      expect(events).toEqual([{ type: 'created', serverId: created.id, slug: 'github-3' }]);
    });

    it('answers 409 naming the field when a given slug or the name is taken', async () => {
      repository.create.mockRejectedValue(new DuplicateServerError('slug'));
      const input = serverInputSchema.parse({ name: 'io.x/y', slug: 'mine', url: 'https://203.0.113.10/' });
      await expect(service.create(input)).rejects.toMatchObject({
        code: 'conflict',
        detail: 'a server with slug "mine" already exists',
        fieldErrors: [{ field: 'slug' }],
      });
      expect(repository.create).toHaveBeenCalledTimes(1);
    });
  });

  describe('patch', () => {
    it('replaces the fields present, clears nulls, keeps the rest', async () => {
      updatingFrom(record({ tags: ['keep'] }));
      const patched = await service.patch('github', { title: 'New', description: null });
      expect(repository.update.mock.calls[0]?.[0]).toBe(record().id);
      expect(patched).toMatchObject({ title: 'New', description: null, tags: ['keep'], revision: 2 });
      expect(events).toEqual([{ type: 'updated', serverId: record().id, slug: 'github' }]);
    });

    it('refuses a stale If-Match and a rename', async () => {
      updatingFrom(record({ revision: 3 }));
      await expect(service.patch('github', { title: 'x' }, etagOf(record().id, 2))).rejects.toMatchObject({
        code: 'precondition_failed',
      });
      await expect(service.patch('github', { name: 'com.contoso/other' })).rejects.toMatchObject({
        code: 'validation_error',
        fieldErrors: [{ field: 'name' }],
      });
      await expect(service.patch('github', { title: 'x' }, etagOf(record().id, 3))).resolves.toMatchObject({
        title: 'x',
      });
      expect(events).toHaveLength(1);
    });

    it('emits nothing when the repository found nothing to change', async () => {
      repository.findByRef.mockResolvedValue(record());
      repository.update.mockResolvedValue({ changed: false, server: record() });
      await service.patch('github', { title: 'GitHub' });
      expect(events).toEqual([]);
    });

    it('answers 400 for a ref that cannot name a server, 404 for one that names none', async () => {
      await expect(service.patch('../..', {})).rejects.toMatchObject({ code: 'validation_error' });
      repository.findByRef.mockResolvedValue(undefined);
      await expect(service.patch('nothing', {})).rejects.toBeInstanceOf(DomainError);
      await expect(service.patch('nothing', {})).rejects.toMatchObject({ code: 'not_found' });
      expect(repository.update).not.toHaveBeenCalled();
    });
  });

  describe('list', () => {
    it('asks for one more than a page to know whether another follows', async () => {
      const rows = [
        record({ id: '00000000-0000-4000-8000-000000000001' }),
        record({ id: '00000000-0000-4000-8000-000000000002' }),
      ];
      repository.list.mockResolvedValue(rows);
      const page = await service.list({ limit: 1 });
      expect(repository.list).toHaveBeenCalledWith(expect.objectContaining({ limit: 2 }));
      expect(page.servers).toHaveLength(1);
      expect(page.nextCursor).toBe(encodeCursor(rows[0] as ServerRecord));
    });

    it('refuses a cursor it did not issue', async () => {
      await expect(service.list({ limit: 30, cursor: 'bm9wZQ' })).rejects.toMatchObject({
        code: 'validation_error',
        fieldErrors: [{ field: 'cursor' }],
      });
    });
  });
});
