import { fingerprintOf } from './fingerprint';
import { diffItems, itemRecords } from './item-records';

describe('itemRecords', () => {
  it('names, fingerprints and positions every item, by kind', () => {
    const records = itemRecords('docs', {
      tool: [
        { name: 'search', description: 'Finds', inputSchema: { type: 'object' } },
        { name: 'old.tool', annotations: { title: 'Old title' }, inputSchema: { type: 'object' } },
      ],
      prompt: [{ name: 'summarise', title: 'Summarise' }],
      resource: [{ uri: 'file:///readme', name: 'README', mimeType: 'text/markdown' }],
      resource_template: [{ uriTemplate: 'file:///{path}', name: 'file' }],
    });
    expect(records.map((record) => [record.kind, record.name, record.gatewayName, record.position])).toEqual([
      ['tool', 'search', 'docs__search', 0],
      ['tool', 'old.tool', expect.stringMatching(/^docs__old_tool_[0-9a-f]{8}$/), 1],
      ['prompt', 'summarise', 'docs__summarise', 0],
      ['resource', 'file:///readme', 'mcpgw://docs/file:///readme', 0],
      ['resource_template', 'file:///{path}', 'mcpgw://docs/file:///{path}', 0],
    ]);
    expect(records[0]).toMatchObject({ title: null, description: 'Finds' });
    expect(records[1]?.title).toBe('Old title');
    expect(records[2]?.title).toBe('Summarise');
    expect(records[3]?.fingerprint).toBe(
      fingerprintOf('resource', { uri: 'file:///readme', name: 'README', mimeType: 'text/markdown' }),
    );
  });
});

describe('diffItems', () => {
  const item = (name: string, fingerprint: string, kind: 'tool' | 'prompt' = 'tool') => ({ kind, name, fingerprint });

  it('reports added, removed and changed items, in kind then name order', () => {
    const before = [item('a', '1'), item('b', '2'), item('c', '3'), item('p', '9', 'prompt')];
    const after = [item('d', '4'), item('b', '2'), item('a', '5'), item('p', '9', 'prompt'), item('q', '8', 'prompt')];
    expect(diffItems(before, after)).toEqual([
      { kind: 'tool', name: 'a', change: 'changed', beforeFingerprint: '1', afterFingerprint: '5' },
      { kind: 'tool', name: 'c', change: 'removed', beforeFingerprint: '3', afterFingerprint: null },
      { kind: 'tool', name: 'd', change: 'added', beforeFingerprint: null, afterFingerprint: '4' },
      { kind: 'prompt', name: 'q', change: 'added', beforeFingerprint: null, afterFingerprint: '8' },
    ]);
  });

  it('keeps kinds apart: a tool and a prompt of one name are different items', () => {
    expect(diffItems([item('x', '1')], [item('x', '1', 'prompt')]).map((change) => change.change)).toEqual([
      'removed',
      'added',
    ]);
  });

  it('reports nothing when nothing changed', () => {
    expect(diffItems([item('a', '1')], [item('a', '1')])).toEqual([]);
  });
});
