import { storableText } from './exchange-row';

describe('storableText', () => {
  it('keeps text without NUL or surrogates as it is', () => {
    for (const text of ['', 'tools/call', 'Ada Lovelace', 'naïve café – ok', '0f8fad5b-d9cb-469f-a165-70867728950e']) {
      expect(storableText(text)).toBe(text);
    }
  });

  it('replaces NUL and lone surrogates, anywhere, and keeps surrogate pairs', () => {
    expect(storableText('a\u0000b')).toBe('a\uFFFDb');
    expect(storableText('\u0000')).toBe('\uFFFD');
    expect(storableText('x\ud800')).toBe('x\uFFFD');
    expect(storableText('\udc00x')).toBe('\uFFFDx');
    expect(storableText('\udc00\ud800')).toBe('\uFFFD\uFFFD');
    expect(storableText('emoji 😀 kept')).toBe('emoji 😀 kept');
    expect(storableText('😀\u0000\ud83d')).toBe('😀\uFFFD\uFFFD');
  });

  it('cuts long text, cleaning a pair the cut split', () => {
    expect(storableText('abcdef', 4)).toBe('abc…');
    expect(storableText('ab😀x', 4)).toBe('ab\uFFFD…');
  });
});
