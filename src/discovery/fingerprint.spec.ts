import { canonicalJson, fingerprintOf } from './fingerprint';

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('drops undefined members and writes undefined array elements as null, as JSON.stringify does', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
    expect(canonicalJson(undefined)).toBe('null');
  });

  it('escapes strings and keys as JSON', () => {
    expect(canonicalJson({ 'k"\n': 'v\u0000é' })).toBe('{"k\\"\\n":"v\\u0000é"}');
  });

  it('orders keys by UTF-16 code units (RFC 8785)', () => {
    expect(canonicalJson({ é: 1, z: 2, Z: 3, '1': 4 })).toBe('{"1":4,"Z":3,"z":2,"é":1}');
  });
});

describe('fingerprintOf', () => {
  const tool = {
    name: 'echo',
    title: 'Echo',
    description: 'Echoes',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
    annotations: { readOnlyHint: true },
  };

  it('is a sha256 in lowercase hex', () => {
    expect(fingerprintOf('tool', tool)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on key order', () => {
    const reordered = {
      annotations: { readOnlyHint: true },
      inputSchema: { properties: { text: { type: 'string' } }, type: 'object' },
      description: 'Echoes',
      title: 'Echo',
      name: 'echo',
    };
    expect(fingerprintOf('tool', reordered)).toBe(fingerprintOf('tool', tool));
  });

  it('ignores fields outside the identity (_meta, icons, unknown ones)', () => {
    expect(fingerprintOf('tool', { ...tool, _meta: { x: 1 }, icons: [], extra: true })).toBe(
      fingerprintOf('tool', tool),
    );
  });

  it.each([
    ['description', { description: 'Echoes loudly' }],
    ['inputSchema', { inputSchema: { type: 'object', properties: { text: { type: 'number' } } } }],
    ['outputSchema', { outputSchema: { type: 'object' } }],
    ['annotations', { annotations: { readOnlyHint: false } }],
    ['title', { title: 'Echo!' }],
    ['name', { name: 'echo2' }],
  ])('changes when %s changes', (_field, change) => {
    expect(fingerprintOf('tool', { ...tool, ...change })).not.toBe(fingerprintOf('tool', tool));
  });

  it('uses the identifying fields of each kind', () => {
    const prompt = { name: 'p', description: 'd', arguments: [{ name: 'x', required: true }] };
    expect(fingerprintOf('prompt', { ...prompt, arguments: [{ name: 'x', required: false }] })).not.toBe(
      fingerprintOf('prompt', prompt),
    );
    const resource = { uri: 'file:///a', name: 'a', mimeType: 'text/plain' };
    expect(fingerprintOf('resource', { ...resource, mimeType: 'text/html' })).not.toBe(
      fingerprintOf('resource', resource),
    );
    expect(fingerprintOf('resource', { ...resource, size: 10 })).toBe(fingerprintOf('resource', resource));
    const template = { uriTemplate: 'file:///{p}', name: 't' };
    expect(fingerprintOf('resource_template', { ...template, uriTemplate: 'file:///{q}' })).not.toBe(
      fingerprintOf('resource_template', template),
    );
  });
});
