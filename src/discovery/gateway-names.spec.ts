import {
  findNameCollisions,
  GATEWAY_NAME,
  gatewayName,
  gatewayResourceUri,
  parseGatewayResourceUri,
  shortHash,
  splitGatewayName,
} from './gateway-names';

describe('gatewayName', () => {
  it('keeps a safe name that fits as {slug}__{name}', () => {
    expect(gatewayName('greet', 'echoHai')).toBe('greet__echoHai');
    expect(gatewayName('my-server', 'get_user-2')).toBe('my-server__get_user-2');
  });

  it('replaces unsafe characters and appends a hash of the original', () => {
    const name = gatewayName('fs', 'read.file');
    expect(name).toBe(`fs__read_file_${shortHash('read.file')}`);
    expect(name).toMatch(GATEWAY_NAME);
  });

  it('tells apart originals that sanitise alike', () => {
    const names = ['a.b', 'a/b', 'a b', 'a:b', 'a_b'].map((original) => gatewayName('s', original));
    expect(new Set(names).size).toBe(names.length);
    expect(names[4]).toBe('s__a_b');
  });

  it('shortens a long name to 64 characters, deterministically', () => {
    const slug = 'a'.repeat(32);
    const long = 'x'.repeat(100);
    const name = gatewayName(slug, long);
    expect(name).toHaveLength(64);
    expect(name).toMatch(GATEWAY_NAME);
    expect(name.endsWith(`_${shortHash(long)}`)).toBe(true);
    expect(gatewayName(slug, long)).toBe(name);
    expect(gatewayName(slug, `${long}y`)).not.toBe(name);
  });

  it('keeps a safe name of exactly the room left, and hashes one longer', () => {
    const fits = 'n'.repeat(64 - 'srv__'.length);
    expect(gatewayName('srv', fits)).toBe(`srv__${fits}`);
    expect(gatewayName('srv', `${fits}n`)).toHaveLength(64);
    expect(gatewayName('srv', `${fits}n`)).not.toBe(`srv__${fits}`);
  });

  it.each(['', 'ünïcödé', '😀😀', 'tool\u0000name', '__', '-', 'a'.repeat(1000), 'x'.repeat(30) + '.'.repeat(30)])(
    'always yields a provider-safe name for %j',
    (original) => {
      const name = gatewayName('s-1', original);
      expect(name).toMatch(GATEWAY_NAME);
      expect(splitGatewayName(name)?.slug).toBe('s-1');
    },
  );

  it('turns one astral character into one underscore', () => {
    expect(gatewayName('s', 'a😀b')).toBe(`s__a_b_${shortHash('a😀b')}`);
  });

  it('refuses a slug that is not one', () => {
    expect(() => gatewayName('Bad_Slug', 'x')).toThrow(/not a server slug/);
  });
});

describe('splitGatewayName', () => {
  it('splits at the first separator, since slugs never hold an underscore', () => {
    expect(splitGatewayName('greet__echo__hai')).toEqual({ slug: 'greet', rest: 'echo__hai' });
  });

  it.each(['', 'noseparator', '__x', 'Greet__x', 'greet__', 'a b__c', `s__${'x'.repeat(62)}`])('rejects %j', (text) => {
    expect(splitGatewayName(text)).toBeUndefined();
  });
});

describe('gateway resource URIs', () => {
  it.each([
    'file:///etc/hosts',
    'https://example.com/a?b=c#d',
    'db://table/{id}',
    'mcpgw://other/x',
    'weird uri with spaces/ü',
    '/relative',
  ])('round-trips %j', (uri) => {
    const gateway = gatewayResourceUri('docs', uri);
    expect(gateway).toBe(`mcpgw://docs/${uri}`);
    expect(parseGatewayResourceUri(gateway)).toEqual({ slug: 'docs', uri });
  });

  it('keeps a template a template: expanding it yields the prefix plus the upstream expansion', () => {
    const template = gatewayResourceUri('fs', 'file:///{path}');
    expect(template).toBe('mcpgw://fs/file:///{path}');
    const expanded = template.replace('{path}', 'a%20b');
    expect(parseGatewayResourceUri(expanded)).toEqual({ slug: 'fs', uri: 'file:///a%20b' });
  });

  it.each(['', 'file:///x', 'mcpgw://', 'mcpgw://slug', 'mcpgw://slug/', 'mcpgw:///x', 'mcpgw://Bad_Slug/x'])(
    'rejects %j',
    (text) => {
      expect(parseGatewayResourceUri(text)).toBeUndefined();
    },
  );
});

describe('findNameCollisions', () => {
  it('finds nothing among distinct names', () => {
    const items = ['a', 'b.c', 'b_c'].map((name) => ({ kind: 'tool', name, gatewayName: gatewayName('s', name) }));
    expect(findNameCollisions(items)).toEqual([]);
  });

  it('reports a safe name crafted to equal another name’s hashed form', () => {
    const hashed = gatewayName('s', 'a.b'); // s__a_b_<hash>
    const crafted = hashed.slice('s__'.length);
    expect(gatewayName('s', crafted)).toBe(hashed);
    const items = [
      { kind: 'tool', name: 'a.b', gatewayName: hashed },
      { kind: 'tool', name: crafted, gatewayName: gatewayName('s', crafted) },
      { kind: 'prompt', name: 'a.b', gatewayName: hashed },
    ];
    expect(findNameCollisions(items)).toEqual([{ kind: 'tool', gatewayName: hashed, names: [crafted, 'a.b'].sort() }]);
  });
});
