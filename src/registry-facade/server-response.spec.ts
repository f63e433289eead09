import type { FacadeVersionRow } from './registry-facade.repository';
import { clip, toServerResponse } from './server-response';

const gateway = { publicUrl: 'https://gw.example.com/base', mcpPrefix: '/mcp' };

function row(overrides: Partial<FacadeVersionRow> = {}): FacadeVersionRow {
  return {
    serverId: '6f1f8a52-5f4e-4a53-9d55-0a4a1f0a9e10',
    name: 'com.contoso/github',
    version: '1.2.0',
    status: 'active',
    isLatest: true,
    publishedAt: new Date('2025-01-01T00:00:00Z'),
    updatedAt: new Date('2025-01-02T00:00:00Z'),
    title: 'GitHub',
    description: 'Issues and pull requests',
    slug: 'github',
    allowedRoles: ['mcp.github'],
    statusMessage: null,
    health: 'healthy',
    toolCount: 12,
    ...overrides,
  };
}

describe('toServerResponse', () => {
  it('answers server.json with the gateway as the only remote and the gateway data beside the official data', () => {
    expect(toServerResponse(row(), gateway)).toEqual({
      server: {
        $schema: 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json',
        name: 'com.contoso/github',
        title: 'GitHub',
        description: 'Issues and pull requests',
        version: '1.2.0',
        remotes: [{ type: 'streamable-http', url: 'https://gw.example.com/base/mcp/github' }],
      },
      _meta: {
        'io.modelcontextprotocol.registry/official': {
          status: 'active',
          publishedAt: '2025-01-01T00:00:00.000Z',
          updatedAt: '2025-01-02T00:00:00.000Z',
          isLatest: true,
        },
        'io.mcp-gateway/server': {
          slug: 'github',
          url: 'https://gw.example.com/base/mcp/github',
          health: 'healthy',
          toolCount: 12,
          requiredRoles: ['mcp.github'],
        },
      },
    });
  });

  it('carries the status message of a deprecated version only', () => {
    const deprecated = toServerResponse(row({ status: 'deprecated', statusMessage: ' Use v2 ' }), gateway);
    expect(deprecated._meta['io.modelcontextprotocol.registry/official']).toMatchObject({
      status: 'deprecated',
      statusMessage: 'Use v2',
    });
    const active = toServerResponse(row({ statusMessage: 'stale message' }), gateway);
    expect(active._meta['io.modelcontextprotocol.registry/official']).not.toHaveProperty('statusMessage');
  });

  it('falls back to the title, then the name, for the description server.json requires', () => {
    expect(toServerResponse(row({ description: '  ' }), gateway).server.description).toBe('GitHub');
    const bare = toServerResponse(row({ description: null, title: null }), gateway).server;
    expect(bare.description).toBe('com.contoso/github');
    expect(bare).not.toHaveProperty('title');
  });

  it('answers a deleted server that left no slug without remotes', () => {
    const gone = toServerResponse(row({ status: 'deleted', slug: null, health: null, toolCount: 0 }), gateway);
    expect(gone.server.remotes).toEqual([]);
    expect(gone._meta['io.mcp-gateway/server']).toEqual({
      health: 'unknown',
      toolCount: 0,
      requiredRoles: ['mcp.github'],
    });
  });
});

describe('clip', () => {
  it('keeps text within the limit and cuts longer text by code points, with an ellipsis', () => {
    expect(clip('short', 10)).toBe('short');
    expect(clip('0123456789', 10)).toBe('0123456789');
    expect(clip('01234567890', 10)).toBe('012345678…');
    const emoji = clip('😀'.repeat(11), 10);
    expect([...emoji]).toHaveLength(10);
    expect(emoji.startsWith('😀'.repeat(9))).toBe(true);
  });
});
