import { decodeCursor, encodeCursor } from './cursor';

const position = { createdAt: new Date('2026-01-02T03:04:05.678Z'), id: '0b9a3c1e-6f1d-4c84-9d4b-2f8a1e7c5d90' };

describe('list cursors', () => {
  it('round-trips a position as base64url', () => {
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(position);
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'abc+/='],
    ['not ours', Buffer.from('hello').toString('base64url')],
    ['no id', Buffer.from('2026-01-02T03:04:05.678Z|').toString('base64url')],
    ['a bad id', Buffer.from('2026-01-02T03:04:05.678Z|nope').toString('base64url')],
    ['an impossible date', Buffer.from(`2026-02-31T00:00:00.000Z|${position.id}`).toString('base64url')],
    [
      'a date in year 0, which PostgreSQL has not',
      Buffer.from(`0000-01-01T00:00:00.000Z|${position.id}`).toString('base64url'),
    ],
    ['a date without milliseconds', Buffer.from(`2026-01-02T03:04:05Z|${position.id}`).toString('base64url')],
    ['extra parts', Buffer.from(`2026-01-02T03:04:05.678Z|${position.id}|x`).toString('base64url')],
    ['too long', 'a'.repeat(201)],
  ])('refuses a cursor that is %s', (_what, cursor) => {
    expect(decodeCursor(cursor)).toBeUndefined();
  });
});
