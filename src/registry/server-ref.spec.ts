import { parseServerRef } from './server-ref';

describe('parseServerRef', () => {
  it('tells ids, slugs and names apart', () => {
    expect(parseServerRef('0B9A3C1E-6F1D-4C84-9D4B-2F8A1E7C5D90')).toEqual({
      kind: 'id',
      id: '0b9a3c1e-6f1d-4c84-9d4b-2f8a1e7c5d90',
    });
    expect(parseServerRef('github')).toEqual({ kind: 'slug', slug: 'github' });
    expect(parseServerRef('com.contoso/github')).toEqual({ kind: 'name', name: 'com.contoso/github' });
  });

  it.each(['', '../..', './x', 'a/../b', '\u0000', 'a\u0000b', 'Upper', 'a/b/c', '/', 'x'.repeat(201), 'io.x/y z'])(
    'refuses %j',
    (ref) => {
      expect(parseServerRef(ref)).toBeUndefined();
    },
  );
});
