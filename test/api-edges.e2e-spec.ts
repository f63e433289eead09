import request from 'supertest';
import { startTestGateway, type TestGateway } from './support/gateway';
import { PROBLEM_JSON, serverBody } from './support/registry';

describe('/api/v1 edges: methods, media types, unknown query keys', () => {
  let gw: TestGateway;
  const api = () => request(gw.url);

  beforeAll(async () => {
    gw = await startTestGateway('services');
  });

  afterAll(async () => {
    await gw?.close();
  });

  describe('a method no route of a known path takes', () => {
    it.each([
      ['put', '/api/v1/servers', 'POST, GET, HEAD, OPTIONS'],
      ['delete', '/api/v1/servers', 'POST, GET, HEAD, OPTIONS'],
      ['patch', '/api/v1/servers', 'POST, GET, HEAD, OPTIONS'],
      ['post', '/api/v1/servers/weather', 'GET, PUT, PATCH, DELETE, HEAD, OPTIONS'],
      ['delete', '/api/v1/audit', 'GET, HEAD, OPTIONS'],
      ['post', '/api/v1/health/servers/0190a8c2-0000-7000-8000-000000000000', 'GET, HEAD, OPTIONS'],
    ] as const)('%s %s is 405 with Allow: %s, in problem+json', async (method, path, allow) => {
      const res = await api()[method](path).expect(405);
      expect(res.headers.allow).toBe(allow);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({ status: 405, code: 'not_found', instance: path });
      expect(res.body.detail).toContain(method.toUpperCase());
    });

    it('OPTIONS on a known path is 204 with Allow, and an unknown path stays 404 for every method', async () => {
      const options = await api().options('/api/v1/servers/weather').expect(204);
      expect(options.headers.allow).toBe('GET, PUT, PATCH, DELETE, HEAD, OPTIONS');
      expect(options.text).toBe('');
      for (const method of ['get', 'put', 'options'] as const) {
        const res = await api()[method]('/api/v1/servers/weather/nothing/below').expect(404);
        expect(res.headers.allow).toBeUndefined();
        expect(res.body).toMatchObject({
          status: 404,
          code: 'not_found',
          detail: 'no resource is served at this path',
        });
      }
      // A path that only looks like a route's: encoded slashes, a dot segment, a NUL.
      for (const path of ['/api/v1/servers%2Fweather/x', '/api/v1/servers/a/b/c/d', '/api/v1/audit/%00/x']) {
        expect((await api().put(path)).status).toBe(404);
      }
    });

    it('under the official registry API: 405 with Allow in its { error } shape', async () => {
      const res = await api().post('/api/v1/registry/v0.1/servers').send({}).expect(405);
      expect(res.headers.allow).toBe('GET, HEAD, OPTIONS');
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.body).toMatchObject({ status: 405, title: 'Method Not Allowed', error: expect.any(String) });
      expect(res.body).not.toHaveProperty('code');
    });

    it('leaves the MCP paths to their own rules: never a 405 there', async () => {
      for (const method of ['put', 'patch'] as const) {
        for (const path of ['/mcp', '/mcp/weather', '/mcp/weather/tools', '/mcp/weather/tools/forecast']) {
          const res = await api()[method](path);
          expect({ path, allow: res.headers.allow, methodNotAllowed: res.status === 405 }).toEqual({
            path,
            allow: undefined,
            methodNotAllowed: false,
          });
        }
      }
    });
  });

  describe('a body that is not JSON', () => {
    it.each([
      ['text/plain', JSON.stringify(serverBody())],
      ['text/plain; charset=utf-8', '{}'],
      ['application/merge-patch+json', JSON.stringify(serverBody())],
      ['application/x-www-form-urlencoded', 'name=a'],
      ['application/jsonx', '{}'],
      ['application/json-seq', '{}'],
      ['multipart/form-data; boundary=x', '--x--'],
    ])('POST with %s is 415 problem+json', async (type, body) => {
      const res = await api().post('/api/v1/servers').set('content-type', type).send(body).expect(415);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({ status: 415, code: 'validation_error' });
      expect(res.body).not.toHaveProperty('errors');
    });

    it('without a content-type at all, or chunked, is 415 too', async () => {
      const untyped = await fetch(`${gw.url}/api/v1/servers`, {
        method: 'POST',
        body: new Blob([JSON.stringify(serverBody())]),
      });
      expect(untyped.status).toBe(415);
      const chunks = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"name":'));
          controller.enqueue(new TextEncoder().encode('"x"}'));
          controller.close();
        },
      });
      const chunked = await fetch(`${gw.url}/api/v1/servers`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: chunks,
        duplex: 'half',
      });
      expect(chunked.status).toBe(415);
      expect(await chunked.json()).toMatchObject({ code: 'validation_error' });
    });

    it('PATCH names what it takes in Accept-Patch: JSON, not a JSON Merge Patch', async () => {
      const created = await api().post('/api/v1/servers').send(serverBody()).expect(201);
      const res = await api()
        .patch(`/api/v1/servers/${created.body.id}`)
        .set('content-type', 'application/merge-patch+json')
        .send(JSON.stringify({ title: 'x' }))
        .expect(415);
      expect(res.headers['accept-patch']).toBe('application/json');
      const unchanged = await api().get(`/api/v1/servers/${created.body.id}`).expect(200);
      expect(unchanged.body.title).toBeNull();
      await api().patch(`/api/v1/servers/${created.body.id}`).send({ title: 'x' }).expect(200);
    });

    it('JSON in any spelling of its media type is read; an empty body of another type is only a missing body', async () => {
      for (const type of ['application/json', 'APPLICATION/JSON', 'application/json; charset=UTF-8']) {
        await api().post('/api/v1/servers').set('content-type', type).send(JSON.stringify(serverBody())).expect(201);
      }
      const empty = await api().post('/api/v1/servers').set('content-type', 'text/plain').expect(400);
      expect(empty.body.errors).toEqual([{ field: '(body)', message: expect.any(String) }]);
      // A route that takes no body is not bothered by a content-type without one.
      await api().get('/api/v1/servers').set('content-type', 'text/plain').expect(200);
    });

    it('the official registry API answers it in its { error } shape', async () => {
      const res = await api()
        .get('/api/v1/registry/v0.1/servers')
        .set('content-type', 'text/plain')
        .send('hello')
        .expect(415);
      expect(res.body).toMatchObject({ status: 415, error: expect.any(String) });
    });
  });

  describe('unknown keys', () => {
    it('in the query: each named, as a query parameter', async () => {
      const res = await api().get('/api/v1/servers?foo=bar&limit=5&bar=1').expect(400);
      expect(res.body.errors).toEqual([
        { field: 'foo', message: 'is not a query parameter of this route' },
        { field: 'bar', message: 'is not a query parameter of this route' },
      ]);
      const audit = await api().get('/api/v1/audit?server=x&%5F%5Fproto%5F%5F=1').expect(400);
      expect(audit.body.errors).toEqual([{ field: '__proto__', message: 'is not a query parameter of this route' }]);
      const constructor = await api().get('/api/v1/discovery/tools?constructor=1').expect(400);
      expect(constructor.body.errors).toEqual([
        { field: 'constructor', message: 'is not a query parameter of this route' },
      ]);
    });

    it('in the body: named, as a field of the body; errors of known fields keep their paths', async () => {
      const res = await api()
        .post('/api/v1/servers')
        .send(serverBody({ zzz: 1, timeouts: { connectMs: 1000, extra: 2 } }))
        .expect(400);
      expect(res.body.errors).toEqual(
        expect.arrayContaining([
          { field: 'zzz', message: 'is not a field of this body' },
          { field: 'timeouts.extra', message: 'is not a field of this body' },
        ]),
      );
      const wrong = await api()
        .post('/api/v1/servers')
        .send(serverBody({ name: 7 }))
        .expect(400);
      expect(wrong.body.errors).toEqual([{ field: 'name', message: expect.any(String) }]);
    });
  });
});
