import type { AppConfig } from '../config/config';
import { DomainError } from '../common/domain-error';
import { decodeListCursor } from './facade-cursor';
import type { FacadeListFilter, FacadeVersionRow, RegistryFacadeRepository } from './registry-facade.repository';
import { RegistryFacadeService } from './registry-facade.service';

type Repository = Pick<RegistryFacadeRepository, 'list' | 'versionsOf' | 'versionOf' | 'hasVersions'>;

function row(name: string, version: string): FacadeVersionRow {
  return {
    serverId: '6f1f8a52-5f4e-4a53-9d55-0a4a1f0a9e10',
    name,
    version,
    status: 'active',
    isLatest: true,
    publishedAt: new Date('2025-01-01T00:00:00Z'),
    updatedAt: new Date('2025-01-01T00:00:00Z'),
    title: null,
    description: 'd',
    slug: 's',
    allowedRoles: [],
    statusMessage: null,
    health: null,
    toolCount: 0,
  };
}

describe('RegistryFacadeService', () => {
  let repository: jest.Mocked<Repository>;
  let service: RegistryFacadeService;

  beforeEach(() => {
    repository = {
      list: jest.fn(),
      versionsOf: jest.fn(),
      versionOf: jest.fn(),
      hasVersions: jest.fn(),
    };
    const config = { publicUrl: 'https://gw.example.com', mcpPrefix: '/mcp' } as AppConfig;
    service = new RegistryFacadeService(repository as unknown as RegistryFacadeRepository, config);
  });

  it('asks for one row more than a page and turns the last row shown into the next cursor', async () => {
    repository.list.mockResolvedValue([row('com.a/x', '1'), row('com.a/y', '1'), row('com.a/z', '1')]);
    const page = await service.list({ limit: 2 });
    expect(repository.list).toHaveBeenCalledWith(expect.objectContaining({ take: 3, latestOnly: false }));
    expect(page.metadata.count).toBe(2);
    expect(decodeListCursor(page.metadata.nextCursor ?? '')).toEqual({ name: 'com.a/y', version: '1' });
  });

  it('omits the cursor on the last page and defaults to 30 a page', async () => {
    repository.list.mockResolvedValue([row('com.a/x', '1')]);
    expect((await service.list({})).metadata).toEqual({ count: 1 });
    expect(repository.list).toHaveBeenCalledWith(expect.objectContaining({ take: 31 }));
  });

  it.each<[string, Parameters<RegistryFacadeService['list']>[0], Partial<FacadeListFilter>]>([
    ['latest', { version: 'latest' }, { latestOnly: true, version: undefined, includeDeleted: false }],
    ['an exact version', { version: '1.0.0' }, { latestOnly: false, version: '1.0.0' }],
    ['include_deleted', { include_deleted: true }, { includeDeleted: true }],
    [
      'updated_since, which includes deleted',
      { updated_since: new Date(0), include_deleted: false },
      { includeDeleted: true },
    ],
  ])('filters for %s', async (_what, query, filter) => {
    repository.list.mockResolvedValue([]);
    await service.list(query);
    expect(repository.list).toHaveBeenCalledWith(expect.objectContaining(filter));
  });

  it('answers 404 for a name that cannot exist without asking the database', async () => {
    await expect(service.versions('no-slash', {})).rejects.toMatchObject({
      code: 'not_found',
      detail: 'Server not found',
    });
    await expect(service.version('x'.repeat(201), 'latest', {})).rejects.toBeInstanceOf(DomainError);
    expect(repository.versionsOf).not.toHaveBeenCalled();
    expect(repository.versionOf).not.toHaveBeenCalled();
  });

  it('tells an unknown version of a known server from an unknown server', async () => {
    repository.versionOf.mockResolvedValue(undefined);
    repository.hasVersions.mockResolvedValueOnce(true).mockResolvedValueOnce(false);
    await expect(service.version('com.a/x', '9.9.9', {})).rejects.toMatchObject({ detail: 'Server version not found' });
    await expect(service.version('com.a/x', '9.9.9', {})).rejects.toMatchObject({ detail: 'Server not found' });
    await expect(service.version('com.a/x', '1\u0000', {})).rejects.toMatchObject({ code: 'not_found' });
    expect(repository.versionOf).toHaveBeenCalledTimes(2);
  });
});
