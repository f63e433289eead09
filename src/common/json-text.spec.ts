import { jsonArray, jsonString } from './json-text';

describe('jsonString and jsonArray', () => {
  // What JSON.stringify escapes, and what it writes as it is although it looks as if it might not.
  const strings = [
    '',
    'plain',
    'say "hi"',
    'back\\slash',
    'line\nbreak',
    'tab\t',
    '\u0000 NUL',
    '\u001f',
    '\u007f DEL',
    'é ü 中文',
    '\u2028 \u2029',
    '😀 paired',
    'lone \ud800 high',
    'lone \udc00 low',
    '</script>',
  ];
  const numbers = [0, -0, 1.5, -3, 1e21, 1e-7, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, -Infinity];

  it('write the text JSON.stringify writes, for each kind of value', () => {
    for (const value of strings) expect(jsonString(value)).toBe(JSON.stringify(value));
    for (const value of [...strings, ...numbers, null]) {
      expect(jsonArray([value])).toBe(JSON.stringify([value]));
      expect(jsonArray(['before', value, 7, null])).toBe(JSON.stringify(['before', value, 7, null]));
    }
    expect(jsonArray([])).toBe('[]');
    expect(jsonArray([...strings, ...numbers])).toBe(JSON.stringify([...strings, ...numbers]));
  });

  it('jsonArray writes values of other types as JSON.stringify does, should a stored row hold one', () => {
    const odd = [undefined, true, { a: 1 }] as unknown as (string | null)[];
    expect(jsonArray(['a', ...odd])).toBe(JSON.stringify(['a', ...odd]));
  });
});
