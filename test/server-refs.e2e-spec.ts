import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DocumentedResponses } from './support/documented-responses';
import { startTestGateway, type TestGateway } from './support/gateway';
import { PROBLEM_JSON, token } from './support/registry';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

type Method = 'get' | 'post';

/** Every route that names one server in its path, as /docs-json writes it, and where its answer names the server. */
const ROUTES: { method: Method; path: string; idOf: (body: Record<string, unknown>) => unknown }[] = [
  { method: 'get', path: '/api/v1/servers/{ref}', idOf: (body) => body.id },
  { method: 'get', path: '/api/v1/servers/{ref}/capabilities', idOf: (body) => (body.server as { id: string }).id },
  { method: 'post', path: '/api/v1/servers/{ref}/refresh', idOf: (body) => (body.server as { id: string }).id },
  { method: 'get', path: '/api/v1/health/servers/{ref}', idOf: (body) => body.id },
  { method: 'post', path: '/api/v1/health/servers/{ref}/probe', idOf: (body) => body.id },
];

/**
 * Every route with a server `{ref}` takes an id, a slug or a URL-encoded name the same way, as `/servers/{ref}` always
 * did: `/servers/{ref}/capabilities` and `/refresh` took an id only (a slug was 404), `/health/servers/{ref}` and its
 * probe answered a slug 400.
 */
describe('a server {ref} on every route', () => {
  let gw: TestGateway;
  let upstream: TestUpstream;
  let documented: DocumentedResponses;
  const slug = `ref-${token()}`;
  const name = `com.example.refs-${token()}/greet`;
  let id: string;

  beforeAll(async () => {
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
    gw = await startTestGateway('services', { UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    documented = await DocumentedResponses.of(gw.url);
    const created = await request(gw.url).post('/api/v1/servers').send({ name, slug, url: upstream.url }).expect(201);
    id = created.body.id as string;
  });

  afterAll(async () => {
    if (id) await request(gw.url).delete(`/api/v1/servers/${id}`);
    await gw?.close();
    await upstream?.stop();
  });

  function call(method: Method, path: string, ref: string): request.Test {
    return request(gw.url)[method](path.replace('{ref}', ref));
  }

  const forms: [string, () => string][] = [
    ['its id', () => id],
    ['its id in capitals', () => id.toUpperCase()],
    ['its slug', () => slug],
    ['its URL-encoded name', () => encodeURIComponent(name)],
  ];

  describe.each(ROUTES)('$method $path', ({ method, path, idOf }) => {
    it.each(forms)('reaches the server by %s', async (_form, refOf) => {
      const res = await call(method, path, refOf());
      expect(res.status).toBe(200);
      expect(idOf(res.body as Record<string, unknown>)).toBe(id);
      documented.check(method, path, res);
    });

    it.each([randomUUID(), `nothing-${token()}`, 'io.none%2Fnothing'])(
      'answers %s, which names no server, 404 not_found',
      async (ref) => {
        const res = await call(method, path, ref);
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
        expect(res.body).toMatchObject({
          code: 'not_found',
          detail: `no server ${JSON.stringify(decodeURIComponent(ref))} is registered`,
        });
        documented.check(method, path, res);
      },
    );

    it.each([
      ['a name that is no slug', 'Not_A_Slug'],
      ['a path', '..%2F..'],
      ['NUL', '%00'],
      ['NUL within', 'a%00b'],
      ['SQL', "x'%20OR%201=1"],
      ['markup', '%3Cscript%3E'],
      ['a name of three parts', 'io.x%2Fy%2Fz'],
      ['300 characters', 'x'.repeat(300)],
      ['a name over 200 characters', `${'a'.repeat(250)}%2Fb`],
      ['an emoji', '%F0%9F%98%80'],
    ])('answers %s, which cannot name a server, 400 naming ref', async (_what, ref) => {
      const res = await call(method, path, ref);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({ code: 'validation_error' });
      expect(res.body.errors).toEqual([
        { field: 'ref', message: 'must be a server id (uuid), slug, or URL-encoded name' },
      ]);
      documented.check(method, path, res);
    });
  });

  it('documents each of them with the same {ref} parameter, and no route by {id} is left', () => {
    for (const { method, path } of ROUTES) {
      expect(documented.operation(method, path).parameters).toContainEqual(
        expect.objectContaining({
          name: 'ref',
          in: 'path',
          description: 'Server id (uuid), slug, or URL-encoded name (`com.example%2Fweather`)',
        }),
      );
    }
    expect(Object.keys(documented.doc.paths).filter((path) => path.includes('{id}'))).toEqual([]);
  });
});
