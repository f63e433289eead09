import { storableText, toUnchainedRow } from './exchange-row';

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

describe('toUnchainedRow', () => {
  const exchange = (at: Date) =>
    ({
      at,
      requestId: 'req-1',
      surface: 'server',
      method: 'tools/call',
      decision: 'allowed',
      outcome: 'ok',
      latencyMs: 1,
    }) as const;
  const policy = { mode: 'redacted', redactKeys: /secret/i, maxBytes: 8192 } as const;

  it('gives each record a time-ordered id that carries its arrival, so ids sort as records arrived', () => {
    const first = toUnchainedRow(exchange(new Date('2026-11-23T02:00:00.001Z')), policy);
    const second = toUnchainedRow(exchange(new Date('2026-11-23T02:00:00.002Z')), policy);
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(parseInt(first.id.replace(/-/g, '').slice(0, 12), 16)).toBe(Date.parse('2026-11-23T02:00:00.001Z'));
    expect(first.id < second.id).toBe(true);
  });
});
