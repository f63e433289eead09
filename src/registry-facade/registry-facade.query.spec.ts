import { encodeListCursor } from './facade-cursor';
import { listServersQuerySchema, parseRfc3339 } from './registry-facade.query';

describe('parseRfc3339', () => {
  it.each([
    ['2025-08-07T13:15:04.280Z', '2025-08-07T13:15:04.280Z'],
    ['2025-08-07T13:15:04Z', '2025-08-07T13:15:04.000Z'],
    ['2025-08-07t13:15:04z', '2025-08-07T13:15:04.000Z'],
    ['2025-08-07T15:15:04+02:00', '2025-08-07T13:15:04.000Z'],
    ['2025-08-07T10:45:04.5-02:30', '2025-08-07T13:15:04.500Z'],
    ['2025-08-07T13:15:04.123456789Z', '2025-08-07T13:15:04.123Z'],
    ['2025-08-07 13:15:04Z', '2025-08-07T13:15:04.000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    // A '+' sent unencoded in a query string arrives as a space.
    ['2025-08-07T15:15:04 02:00', '2025-08-07T13:15:04.000Z'],
  ])('reads %s', (text, iso) => {
    expect(parseRfc3339(text)?.toISOString()).toBe(iso);
  });

  it.each([
    'yesterday',
    '2025-08-07',
    '2025-08-07T13:15:04',
    '2025-08-07T13:15Z',
    '2025-13-01T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2025-04-31T00:00:00Z',
    '2025-01-01T24:00:00Z',
    '2025-01-01T00:60:00Z',
    '2025-01-01T00:00:60Z',
    '2025-01-01T00:00:00+24:00',
    '0000-01-01T00:00:00Z',
    '+02025-01-01T00:00:00Z',
    '2025-01-01T00:00:00.Z',
  ])('refuses %s', (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });
});

describe('listServersQuerySchema', () => {
  it('reads every parameter, and an empty one as absent', () => {
    const cursor = encodeListCursor({ name: 'com.example/a', version: '1.0.0' });
    expect(
      listServersQuerySchema.parse({
        cursor,
        limit: '100',
        search: 'git',
        updated_since: '2025-01-01T00:00:00Z',
        version: 'latest',
        include_deleted: 'TRUE',
      }),
    ).toEqual({
      cursor: { name: 'com.example/a', version: '1.0.0' },
      limit: 100,
      search: 'git',
      updated_since: new Date('2025-01-01T00:00:00Z'),
      version: 'latest',
      include_deleted: true,
    });
    expect(
      listServersQuerySchema.parse({
        cursor: '',
        limit: '',
        search: '',
        updated_since: '',
        version: '',
        include_deleted: '',
      }),
    ).toEqual({});
  });

  it.each([
    { limit: '0' },
    { limit: '101' },
    { limit: '1e2' },
    { limit: ' 5' },
    { limit: ['1', '2'] },
    { cursor: 'nope' },
    { search: 'x'.repeat(201) },
    { search: 'a\u0000b' },
    { search: 'a\u0007b' },
    { version: '1.0\u0000' },
    { version: 'v'.repeat(256) },
    { include_deleted: 'yes' },
    { updated_since: '2025-01-01' },
  ])('refuses %o', (query) => {
    expect(listServersQuerySchema.safeParse(query).success).toBe(false);
  });
});
