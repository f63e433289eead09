import { decodeSearchCursor, encodeSearchCursor } from './search-cursor';

describe('search cursors', () => {
  const position = {
    gatewayName: 'mcpgw://docs/file:///ü?x=1',
    serverId: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
    kind: 'resource' as const,
    name: 'file:///ü?x=1',
  };

  it('round-trips a position as an opaque base64url token', () => {
    const cursor = encodeSearchCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeSearchCursor(cursor)).toEqual(position);
  });

  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

  it.each([
    ['empty', ''],
    ['not base64url', 'abc+/='],
    ['not JSON', Buffer.from('nope').toString('base64url')],
    ['an object', encode({ gatewayName: 'a' })],
    ['too short', encode(['a', position.serverId, 'tool'])],
    ['a number inside', encode(['a', position.serverId, 'tool', 1])],
    ['a bad server id', encode(['a', 'not-a-uuid', 'tool', 'a'])],
    ['an unknown kind', encode(['a', position.serverId, 'widget', 'a'])],
    ['a NUL', encode(['a\u0000', position.serverId, 'tool', 'a'])],
    ['an empty name', encode(['a', position.serverId, 'tool', ''])],
    ['far too long', 'A'.repeat(20_000)],
  ])('rejects %s', (_what, cursor) => {
    expect(decodeSearchCursor(cursor)).toBeUndefined();
  });
});
