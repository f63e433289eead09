import { decodeListCursor, encodeListCursor } from './facade-cursor';

describe('list cursors', () => {
  it('round-trips a position, build metadata and all', () => {
    const position = { name: 'com.example/my-server', version: '1.0.0+20130313144700' };
    const cursor = encodeListCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeListCursor(cursor)).toEqual(position);
  });

  it.each([
    ['not base64url', 'abc$def'],
    ['not JSON', Buffer.from('hello').toString('base64url')],
    ['not a pair', Buffer.from('["com.example/a"]').toString('base64url')],
    ['not strings', Buffer.from('["com.example/a",1]').toString('base64url')],
    ['not a server name', Buffer.from('["no slash","1.0.0"]').toString('base64url')],
    ['an empty version', Buffer.from('["com.example/a",""]').toString('base64url')],
    ['a NUL in the version', Buffer.from('["com.example/a","1\\u0000"]').toString('base64url')],
    ['a non-canonical encoding', Buffer.from('[ "com.example/a", "1.0.0" ]').toString('base64url')],
    ['too long', 'A'.repeat(801)],
  ])('refuses %s', (_what, cursor) => {
    expect(decodeListCursor(cursor)).toBeUndefined();
  });
});
