import {
  applyArgumentPolicy,
  argumentsWithin,
  canonicalJson,
  type ArgumentPolicyConfig,
  redactKeyPattern,
} from './argument-policy';

const policy = (overrides: Partial<ArgumentPolicyConfig> = {}): ArgumentPolicyConfig => ({
  mode: 'redacted',
  redactKeys: redactKeyPattern('password|secret|token|key'),
  maxBytes: 8192,
  ...overrides,
});

describe('applyArgumentPolicy', () => {
  it('redacts matching keys at any depth, case-insensitively, and keeps the rest', () => {
    const args = {
      city: 'Paris',
      API_KEY: 'k',
      nested: { Password: 'p', list: [{ accessToken: 't', keep: 1 }], deeper: { clientSecret: { a: 1 } } },
    };
    expect(JSON.parse(applyArgumentPolicy(args, policy())!)).toEqual({
      city: 'Paris',
      API_KEY: '[redacted]',
      nested: {
        Password: '[redacted]',
        list: [{ accessToken: '[redacted]', keep: 1 }],
        deeper: { clientSecret: '[redacted]' },
      },
    });
  });

  it('redacts token-shaped strings whatever their key', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
    expect(JSON.parse(applyArgumentPolicy({ a: jwt, b: ['Bearer abc.def'], c: 'plain' }, policy())!)).toEqual({
      a: '[redacted]',
      b: ['[redacted]'],
      c: 'plain',
    });
  });

  it('redacts tokens within longer strings, where they stand, and leaves prose alone', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
    const args = {
      url: `https://api.example.com/v1?access_token=${jwt}&page=2`,
      command: `curl -H 'Authorization: Bearer ghp_16C7e42F292c6912E7710c838347Ae178B4a' https://api.github.com`,
      note: `my token is ${jwt}, keep it`,
      prose: 'the bearer of this letter',
    };
    expect(JSON.parse(applyArgumentPolicy(args, policy())!)).toEqual({
      url: 'https://api.example.com/v1?access_token=[redacted]&page=2',
      command: `curl -H 'Authorization: [redacted]' https://api.github.com`,
      note: 'my token is [redacted], keep it',
      prose: 'the bearer of this letter',
    });
  });

  it('stores nothing when off, and a stable hash that hides the values when hashing', () => {
    expect(applyArgumentPolicy({ password: 'x' }, policy({ mode: 'off' }))).toBeNull();
    const a = applyArgumentPolicy({ b: 1, password: 'hunter2' }, policy({ mode: 'hash' }));
    const b = applyArgumentPolicy({ password: 'hunter2', b: 1 }, policy({ mode: 'hash' }));
    const c = applyArgumentPolicy({ password: 'hunter3', b: 1 }, policy({ mode: 'hash' }));
    expect(a).toMatch(/^"sha256:[0-9a-f]{64}"$/);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(a).not.toContain('hunter2');
  });

  it('keeps a `__proto__` key and its value like any other, in the record and in the hash', () => {
    const args = JSON.parse('{"__proto__":{"command":"rm -rf /","password":"p"},"city":"Paris"}') as unknown;
    expect(applyArgumentPolicy(args, policy())).toBe(
      '{"__proto__":{"command":"rm -rf /","password":"[redacted]"},"city":"Paris"}',
    );
    expect(applyArgumentPolicy(args, policy({ mode: 'hash' }))).not.toBe(
      applyArgumentPolicy({ city: 'Paris' }, policy({ mode: 'hash' })),
    );
  });

  it('replaces arguments larger than the limit by their size and hash', () => {
    const stored = JSON.parse(applyArgumentPolicy({ text: 'x'.repeat(10_000) }, policy({ maxBytes: 1024 }))!);
    expect(stored).toEqual({ truncated: true, bytes: 10_011, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('stores nothing for absent arguments, and survives what a parsed body cannot hold', () => {
    expect(applyArgumentPolicy(undefined, policy())).toBeNull();
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(JSON.parse(canonicalJson(cyclic, undefined))).toEqual({ a: 1, self: '[cycle]' });
    expect(JSON.parse(canonicalJson({ n: Number.NaN, big: 10n, f: () => 1 }, undefined))).toEqual({
      big: '10',
      f: '[function]',
      n: 'NaN',
    });
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(canonicalJson(deep, undefined)).toContain('[too deep]');
  });
});

describe('argumentsWithin', () => {
  it("tells small arguments from large ones by what they hold: strings' characters, and every value and key", () => {
    expect(argumentsWithin(undefined, 16)).toBe(true);
    expect(argumentsWithin({ city: 'Paris', days: 3, options: { units: 'metric' } }, 1024)).toBe(true);
    expect(argumentsWithin({ text: 'x'.repeat(1024) }, 1024)).toBe(false);
    // Few characters, many values: an array of 1,000 empty objects holds more than its 3 KB of JSON says.
    expect(
      argumentsWithin(
        Array.from({ length: 1_000 }, () => ({})),
        8192,
      ),
    ).toBe(false);
    expect(argumentsWithin({ ['k'.repeat(1024)]: 1 }, 1024)).toBe(false);
  });

  it('answers for what a parsed body cannot hold, without walking all of it', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(argumentsWithin(cyclic, 1_000_000)).toBe(false);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(argumentsWithin(deep, 1_000_000)).toBe(false);
    expect(argumentsWithin(new Array<number>(1e9), 8192)).toBe(false);
  });
});
