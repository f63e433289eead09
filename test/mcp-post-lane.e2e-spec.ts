import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { auditOf } from './support/audit';
import { entraEnv, LocalEntraIssuer } from './support/entra-issuer';
import { waitUntil } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { type PlainAnswer, plainRequest } from './support/raw-request';
import { redisUserWithout, type RedisUser } from './support/redis-user';

const MAX_BODY_BYTES = 4096;

const initialize = (id: number | string) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'lane-test', version: '1.0.0' } },
  });

/**
 * POSTs to the MCP endpoints are served outside Express (src/mcp/mcp-post-lane.ts); everything else about them
 * is tested through the MCP suites. Here: which requests the lane leaves to Express, and what it answers to
 * bodies it cannot use. Its access log line carries no headers, Express's does: that tells who served a request.
 */
describe('the POST lane of the MCP endpoints', () => {
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    gw = await startTestGateway('embedded', { ...entraEnv(issuer), MAX_BODY_BYTES: String(MAX_BODY_BYTES) });
    token = await issuer.token({ roles: [] });
  });

  afterAll(async () => {
    await gw?.close();
    await issuer?.stop();
  });

  const json = (extra: Record<string, string> = {}) => ({
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${token}`,
    ...extra,
  });

  /** The access log line of a request, by the id the test gave it. */
  const accessLine = (requestId: string) =>
    gw.logs.lines.find((line) => (line.req as { id?: string } | undefined)?.id === requestId) as
      { req: { method: string; url: string; headers?: unknown }; res: { statusCode: number }; msg: string } | undefined;

  it('serves initialize on /mcp itself and logs one line without headers', async () => {
    const requestId = `lane-${randomUUID()}`;
    const answer = await plainRequest(gw.url, 'POST', '/mcp', json({ 'x-request-id': requestId }), initialize(1));

    expect(answer.status).toBe(200);
    expect(answer.headers['x-request-id']).toBe(requestId);
    expect(answer.headers['mcp-session-id']).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(JSON.parse(answer.text)).toMatchObject({ jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-06-18' } });
    await waitUntil(() => accessLine(requestId) !== undefined, 'the access log line');
    const line = accessLine(requestId);
    expect(line).toMatchObject({
      req: { method: 'POST', url: '/mcp' },
      res: { statusCode: 200 },
      msg: 'request completed',
    });
    expect(line?.req.headers).toBeUndefined();
  });

  it('takes the TCP peer for the caller, not X-Forwarded-For, when no proxy is trusted (TRUST_PROXY unset)', async () => {
    const requestId = `lane-${randomUUID()}`;
    const answer = await plainRequest(
      gw.url,
      'POST',
      '/mcp',
      json({ 'x-request-id': requestId, 'x-forwarded-for': '203.0.113.9' }),
      initialize(3),
    );
    expect(answer.status).toBe(200);

    await auditOf(gw.gateway.app).trail.flush();
    const res = await request(gw.url).get('/api/v1/audit').query({ method: 'initialize', limit: '500' }).expect(200);
    const record = (res.body.records as { requestId: string; ip: string | null }[]).find(
      (candidate) => candidate.requestId === requestId,
    );
    expect(record?.ip).toBe('127.0.0.1');
  });

  it.each([
    ['a compressed body', '/mcp', { 'content-encoding': 'gzip' }],
    ['a query string', '/mcp?via=express', {}],
    ['a trailing slash', '/mcp/', {}],
    ['a JSON type with more parameters', '/mcp', { 'content-type': 'application/json; charset=utf-8; x=y' }],
  ])('leaves %s to Express, which answers it as before', async (_what, path, headers: Record<string, string>) => {
    const requestId = `express-${randomUUID()}`;
    const body = headers['content-encoding'] === 'gzip' ? gzipSync(initialize(2)) : initialize(2);
    const answer = await plainRequest(gw.url, 'POST', path, json({ 'x-request-id': requestId, ...headers }), body);

    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ jsonrpc: '2.0', id: 2, result: { protocolVersion: '2025-06-18' } });
    // pino-http's line, with the (redacted) headers.
    await waitUntil(() => accessLine(requestId) !== undefined, 'the access log line');
    expect(accessLine(requestId)?.req.headers).toMatchObject({ authorization: '[redacted]' });
  });

  it('refuses a body over MAX_BODY_BYTES with 413 and closes the connection, as Express does', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping', params: { pad: 'x'.repeat(MAX_BODY_BYTES) } });
    const viaLane = await plainRequest(gw.url, 'POST', '/mcp', json(), big);
    const viaExpress = await plainRequest(gw.url, 'POST', '/mcp?via=express', json(), big);

    expect(viaLane.status).toBe(413);
    expect(viaLane.headers.connection).toBe('close');
    expect(JSON.parse(viaLane.text)).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: `Invalid Request: the request body is larger than ${MAX_BODY_BYTES} bytes` },
    });
    expect([viaExpress.status, JSON.parse(viaExpress.text)]).toEqual([viaLane.status, JSON.parse(viaLane.text)]);
  });

  it('refuses a body over MAX_BODY_BYTES sent without a length (chunked) too', async () => {
    const answer = await new Promise<PlainAnswer>((resolve, reject) => {
      const req = http.request(`${gw.url}/mcp`, { method: 'POST', headers: json(), agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      // The server may close the connection while the rest is still being written.
      req.on('error', reject);
      req.write(`{"jsonrpc":"2.0","id":4,"method":"ping","params":{"pad":"`);
      req.write('x'.repeat(MAX_BODY_BYTES));
      req.end('"}}');
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.text)).toMatchObject({ id: null, error: { code: -32600 } });
  });

  it.each([
    ['invalid JSON', '{"jsonrpc":"2.0",'],
    ['a JSON string', '"initialize"'],
    ['a JSON string after whitespace', ' \n"initialize"'],
    ['only whitespace', ' \r\n\t '],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['an empty body', ''],
    ['an empty batch', '[]'],
    ['a batch of garbage', '[1, "two", null]'],
    ['a request without a method', '{"jsonrpc":"2.0","id":5}'],
    ['a request without a method after whitespace', '\r\n\t {"jsonrpc":"2.0","id":5}'],
  ])('answers %s exactly as Express does, with a JSON-RPC error', async (_what, body) => {
    const viaLane = await plainRequest(gw.url, 'POST', '/mcp', json(), body);
    const viaExpress = await plainRequest(gw.url, 'POST', '/mcp?via=express', json(), body);

    expect(viaLane.status).toBeGreaterThanOrEqual(400);
    expect(viaLane.status).toBeLessThan(500);
    const error = JSON.parse(viaLane.text) as { jsonrpc: string; error: { code: number; message: string } };
    expect(error).toMatchObject({ jsonrpc: '2.0', error: { code: expect.any(Number), message: expect.any(String) } });
    expect([viaExpress.status, JSON.parse(viaExpress.text)]).toEqual([viaLane.status, error]);
  });

  it.each([
    ['invalid JSON', '{"userName":', 400],
    ['a JSON string', '"Ada"', 400],
    ['a body over MAX_BODY_BYTES', JSON.stringify({ pad: 'x'.repeat(MAX_BODY_BYTES) }), 413],
  ])('answers a REST bridge call with %s in problem+json, exactly as Express does', async (_what, body, status) => {
    const viaLane = await plainRequest(gw.url, 'POST', '/mcp/some-server/tools/echo', json(), body);
    const viaExpress = await plainRequest(gw.url, 'POST', '/mcp/some-server/tools/echo?via=express', json(), body);

    expect(viaLane.status).toBe(status);
    expect(viaLane.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    const problem = JSON.parse(viaLane.text) as Record<string, unknown>;
    expect(problem).toMatchObject({ status, code: 'validation_error', instance: '/mcp/some-server/tools/echo' });
    expect([viaExpress.status, JSON.parse(viaExpress.text)]).toEqual([status, problem]);
  });

  it('answers a REST bridge call to an unknown server with the same 404 problem as Express', async () => {
    const requestId = `lane-${randomUUID()}`;
    const body = JSON.stringify({ userName: 'Ada' });
    const viaLane = await plainRequest(
      gw.url,
      'POST',
      '/mcp/no-such-server/tools/echoHai',
      json({ 'x-request-id': requestId }),
      body,
    );
    const viaExpress = await plainRequest(
      gw.url,
      'POST',
      '/mcp/no-such-server/tools/echoHai?via=express',
      json(),
      body,
    );

    expect(viaLane.status).toBe(404);
    expect(JSON.parse(viaLane.text)).toMatchObject({
      code: 'not_found',
      instance: '/mcp/no-such-server/tools/echoHai',
    });
    expect([viaExpress.status, JSON.parse(viaExpress.text)]).toEqual([404, JSON.parse(viaLane.text)]);
    await waitUntil(() => accessLine(requestId) !== undefined, 'the access log line');
    expect(accessLine(requestId)).toMatchObject({ res: { statusCode: 404 } });
    expect(accessLine(requestId)?.req.headers).toBeUndefined();
  });

  it('still asks for a token first, and counts what it refused under the prefix route', async () => {
    const answer = await plainRequest(
      gw.url,
      'POST',
      '/mcp/some-server',
      { 'content-type': 'application/json' },
      initialize(6),
    );
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toMatch(/^Bearer resource_metadata="/);
  });
});

/**
 * A handler that fails (an exception nobody caught) is answered -32603, and the id of the log line holding the error,
 * nothing else of it, goes with the answer. The failure is a real one: the gateway's Redis user may not run SET
 * (a Redis ACL), so the session of an initialize cannot be stored, and Redis's refusal reaches the lane.
 */
describe('a request whose handler fails on the POST lane', () => {
  let redisUser: RedisUser | undefined;
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    redisUser = await redisUserWithout('set');
    issuer = await LocalEntraIssuer.start();
    gw = await startTestGateway('services', { ...entraEnv(issuer), REDIS_URL: redisUser.url });
    token = await issuer.token({ roles: [] });
  });

  afterAll(async () => {
    await gw?.close();
    await issuer?.stop();
    await redisUser?.remove();
  });

  it("answers -32603 to the request's id, carrying the error id of the log line that holds the error, and nothing else", async () => {
    const requestId = `lane-${randomUUID()}`;
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      'x-request-id': requestId,
    };
    const answer = await plainRequest(gw.url, 'POST', '/mcp', headers, initialize(7));

    expect(answer.status).toBe(500);
    const body = JSON.parse(answer.text) as { error: { data?: { errorId?: string } } };
    expect(body).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32603, message: 'Internal error', data: { errorId: expect.stringMatching(/^[0-9a-f-]{36}$/) } },
    });
    const errorId = body.error.data?.errorId;
    await waitUntil(() => gw.logs.lines.some((line) => line.errorId === errorId), 'the error line');
    // One line holds the error, its id and the request's.
    const lines = gw.logs.lines.filter((line) => line.errorId === errorId || line.reqId === requestId);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        errorId,
        reqId: requestId,
        err: expect.objectContaining({ message: expect.stringContaining('NOPERM') }),
      }),
    ]);
    expect(answer.text).not.toContain('NOPERM');
  });
});
