import { GATEWAY_META_KEY } from './server.schema';
import type { ServerView } from './server.dto';
import {
  fromServerJson,
  SERVER_JSON_SCHEMA_URL,
  serverJsonFieldOf,
  serverJsonSchema,
  toServerJson,
} from './server-json';

const view: ServerView = {
  id: '0b9a3c1e-6f1d-4c84-9d4b-2f8a1e7c5d90',
  name: 'com.contoso/github',
  slug: 'github',
  title: 'GitHub',
  description: null,
  version: '1.2.0',
  url: 'https://mcp.contoso.com/github',
  transport: 'sse',
  auth: { type: 'headers', headers: { 'X-Api-Key': { env: 'GITHUB_KEY' } } },
  tags: ['scm'],
  status: 'deprecated',
  statusMessage: 'use v2',
  allowedRoles: ['dev'],
  timeouts: { requestMs: 1000 },
  toolRules: { deny: ['delete_*'] },
  revision: 4,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-02T00:00:00.000Z',
};

describe('server.json mapping', () => {
  it('writes a server as server.json with its gateway settings under our _meta key', () => {
    expect(toServerJson(view)).toEqual({
      $schema: SERVER_JSON_SCHEMA_URL,
      name: 'com.contoso/github',
      title: 'GitHub',
      version: '1.2.0',
      remotes: [
        {
          type: 'sse',
          url: 'https://mcp.contoso.com/github',
          headers: [{ name: 'X-Api-Key', isRequired: true, isSecret: true }],
        },
      ],
      _meta: {
        [GATEWAY_META_KEY]: {
          slug: 'github',
          auth: view.auth,
          tags: ['scm'],
          status: 'deprecated',
          statusMessage: 'use v2',
          allowedRoles: ['dev'],
          timeouts: { requestMs: 1000 },
          toolRules: { deny: ['delete_*'] },
        },
      },
    });
  });

  it('reads back what it writes', () => {
    const parsed = serverJsonSchema.parse(toServerJson(view));
    expect(fromServerJson(parsed)).toEqual({
      ok: true,
      server: {
        name: view.name,
        title: 'GitHub',
        description: null,
        version: '1.2.0',
        url: view.url,
        transport: 'sse',
        settings: toServerJson(view)._meta?.[GATEWAY_META_KEY],
      },
    });
  });

  it('reads an official document without gateway settings, ignoring what it does not keep', () => {
    const parsed = serverJsonSchema.parse({
      $schema: SERVER_JSON_SCHEMA_URL,
      name: 'io.github.user/weather',
      description: 'Weather',
      version: '1.0.0',
      websiteUrl: 'https://example.com',
      icons: [{ src: 'https://example.com/icon.png' }],
      packages: [{ registryType: 'npm', identifier: 'weather', version: '1.0.0', transport: { type: 'stdio' } }],
      remotes: [
        { type: 'streamable-http', url: 'https://weather.example.com/mcp' },
        { type: 'sse', url: 'x' },
      ],
      futureField: true,
    });
    expect(fromServerJson(parsed)).toMatchObject({
      ok: true,
      server: { url: 'https://weather.example.com/mcp', transport: 'streamable-http', settings: {} },
    });
  });

  it.each([
    [{ remotes: [] }, 'remotes'],
    [{ remotes: [{ type: 'stdio', url: 'https://x.example.com' }] }, 'remotes.0.type'],
    [{ remotes: [{ type: 'sse', url: 'https://{tenant}.example.com/sse' }] }, 'remotes.0.url'],
  ])('refuses a document without a usable first remote (%j)', (overrides, field) => {
    const parsed = serverJsonSchema.parse({ name: 'io.x/y', version: '1.0.0', ...overrides });
    expect(fromServerJson(parsed)).toEqual({ ok: false, errors: [expect.objectContaining({ field })] });
  });

  it('places registration fields where server.json keeps them', () => {
    expect(serverJsonFieldOf('url')).toBe('remotes.0.url');
    expect(serverJsonFieldOf('transport')).toBe('remotes.0.type');
    expect(serverJsonFieldOf('slug')).toBe(`_meta.${GATEWAY_META_KEY}.slug`);
    expect(serverJsonFieldOf('name')).toBe('name');
  });
});
