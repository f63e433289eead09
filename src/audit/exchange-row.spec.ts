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

describe('toUnchainedRow: the target', () => {
  const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl';
  const targetOf = (target: string, mode: 'off' | 'redacted' | 'hash' = 'redacted') =>
    toUnchainedRow(
      {
        at: new Date(),
        requestId: 'r',
        surface: 'server',
        method: 'resources/read',
        target,
        decision: 'allowed',
        outcome: 'ok',
        latencyMs: 1,
      },
      { mode, redactKeys: /secret/i, maxBytes: 8192 },
    ).target;

  it.each([
    [
      'an access_token in the query',
      'https://files.example/doc?access_token=opaque-123&page=2',
      'https://files.example/doc?access_token=[redacted]&page=2',
    ],
    [
      'any credential parameter, however spelled',
      'https://x/?ACC%45SS_TOKEN=a&api_key[]=b&code=c&q=d',
      'https://x/?ACC%45SS_TOKEN=[redacted]&api_key[]=[redacted]&code=[redacted]&q=d',
    ],
    [
      'an access_token in the fragment',
      'https://app.example/cb#access_token=opaque-123&token_type=bearer',
      'https://app.example/cb#access_token=[redacted]&token_type=bearer',
    ],
    [
      "a signed URL's signature and credentials",
      'https://acct.blob.core.windows.net/c/a.txt?sv=2022-11-02&sp=r&se=2026-12-01&sig=c2ln' +
        '#X-Amz-Credential=AKIA%2Fx&X-Amz-Security-Token=IQo&X-Amz-Signature=0f&X-Goog-Signature=8a&Signature=s',
      'https://acct.blob.core.windows.net/c/a.txt?sv=2022-11-02&sp=r&se=2026-12-01&sig=[redacted]' +
        '#X-Amz-Credential=[redacted]&X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]' +
        '&X-Goog-Signature=[redacted]&Signature=[redacted]',
    ],
    ['a query and a fragment', 'https://x/?code=a#id_token=b', 'https://x/?code=[redacted]#id_token=[redacted]'],
    [
      "a path segment's credential parameter",
      'https://files.example/v1;token=opaque-9/docs;rev=3/a.txt',
      'https://files.example/v1;token=[redacted]/docs;rev=3/a.txt',
    ],
    [
      'a user and password',
      'postgres://admin:hunter2@db.internal:5432/app',
      'postgres://[redacted]@db.internal:5432/app',
    ],
    ['a token as the user name', 'https://ghp_abc123@github.com/o/r', 'https://[redacted]@github.com/o/r'],
    ['every @ of a userinfo', 'https://a@b:c@host/p', 'https://[redacted]@host/p'],
    ['a JWT anywhere', `https://x/files/${JWT}/doc`, 'https://x/files/[redacted]/doc'],
    ['a JWT under a parameter of any name', `https://x/?t=${JWT}`, 'https://x/?t=[redacted]'],
    ['a Bearer credential', 'note://Authorization: Bearer abc.def-123', 'note://Authorization: [redacted]'],
    ['a target that is a token', JWT, '[redacted]'],
  ])('redacts %s', (_name, target, stored) => {
    expect(targetOf(target)).toBe(stored);
    // Whatever AUDIT_ARGUMENTS says.
    expect(targetOf(target, 'off')).toBe(stored);
  });

  it.each([
    'echoHai',
    'search_code',
    'github__get_me',
    'a.b:c',
    'test://static-text',
    'test://template/42/data',
    'mailto:ada@example.com',
    'https://example.com/users/@ada',
    'https://x/?tokens=1&my_access_token=2&q=access_token',
    'prose with a bearer of news',
  ])('keeps %s as it is', (target) => {
    expect(targetOf(target)).toBe(target);
  });

  it('redacts before it cuts, so no part of a token cut short is kept', () => {
    const stored = targetOf(`https://x/${'p'.repeat(1_000)}?s=${JWT}&code=${'c'.repeat(100)}`);
    expect(stored!.length).toBeLessThanOrEqual(1_024);
    expect(stored).not.toMatch(/eyJ|ccc/);
  });
});
