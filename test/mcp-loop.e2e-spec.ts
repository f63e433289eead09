import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import request from 'supertest';
import { viaPseudonymOf } from '../src/upstream/gateway-via';
import { defaultTokenReply, entraEnv, GATEWAY_CLIENT_ID, type LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { type GuardedUpstream, guardUpstream } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { PROBLEM_JSON } from './support/registry';
import { createScratchDatabase, REDIS_URL } from './support/services';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

/** Where the gateway's own requests come back to it from, in these tests: its PUBLIC_URL (entraEnv's). */
const GATEWAY_PUBLIC_URL = 'https://gateway.test';
const LOOP =
  /Upstream \S+ failed: the upstream answered HTTP 508 Loop Detected: the server's URL leads back to this gateway/;

/**
 * An upstream URL that leads back to the gateway (its own `/mcp/{slug}`), with upstream credentials the gateway
 * accepts (a client-credentials token for its own API): the gateway's request comes back to it carrying its `Via`
 * entry and is refused with 508 at once, instead of being relayed again at every hop until the per-IP limit ran dry
 * (some 1,200 requests, then every caller from the gateway's address refused for a minute).
 */
describe('an upstream URL that leads back to the gateway', () => {
  let deployment: GuardedUpstream;
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  /** A registration of a real upstream: what a gateway in front reaches through this one. */
  let backSlug: string;
  const made: { gateway: TestGateway; id: string }[] = [];
  const others: TestGateway[] = [];
  const dropDatabases: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    deployment = await guardUpstream(await TestUpstream.start('greet', GREET_TOOLS), { slug: 'back' });
    ({ issuer, gw, slug: backSlug } = deployment);
    // The gateway's own app-only token for its own API, as Entra issues it when the app is given an app role of itself.
    const own = await issuer.token({ scp: undefined, roles: ['Gateway.Admin'], idtyp: 'app', azp: GATEWAY_CLIENT_ID });
    issuer.tokenReply = (asked, count) =>
      asked.params.grant_type === 'client_credentials'
        ? { status: 200, body: { token_type: 'Bearer', expires_in: 3600, access_token: own } }
        : defaultTokenReply(asked, count);
  });

  afterAll(async () => {
    for (const { gateway, id } of made) await request(gateway.url).delete(`/api/v1/servers/${id}`);
    for (const other of others) await other.close();
    for (const drop of dropDatabases) await drop();
    await deployment?.stop();
  });

  /** Registers `slug` on `gateway` with `url`, reached with a client-credentials token for the gateway's own API. */
  async function register(gateway: TestGateway, slug: string, url: string): Promise<string> {
    const created = await request(gateway.url)
      .post('/api/v1/servers')
      .send({
        name: `com.example.loop/${slug}`,
        slug,
        url,
        auth: { type: 'entra-client-credentials', scope: `api://${GATEWAY_CLIENT_ID}/.default` },
      })
      .expect(201);
    made.push({ gateway, id: created.body.id as string });
    return created.body.id as string;
  }

  /** The status of every answer `gateway` has logged for `path`, in the order they ended. */
  function answersTo(gateway: TestGateway, path: string): number[] {
    return gateway.logs.lines
      .filter((line) => line.msg === 'request completed' && (line.req as { url?: string }).url === path)
      .map((line) => (line.res as { statusCode: number }).statusCode);
  }

  async function adminToken(): Promise<string> {
    return issuer.token({ roles: ['Gateway.Admin'] });
  }

  it("refuses discovery of a server registered with its own /mcp/{slug}: the gateway's request is not relayed", async () => {
    const slug = `self-${randomUUID().slice(0, 8)}`;
    const id = await register(gw, slug, `${gw.url}/mcp/${slug}`);
    const refreshed = await request(gw.url).post(`/api/v1/servers/${id}/refresh`).expect(502);
    expect(refreshed.body.detail).toMatch(/HTTP 508 Loop Detected: the server's URL leads back to this gateway/);
    const caps = await request(gw.url).get(`/api/v1/servers/${id}/capabilities`).expect(200);
    expect(caps.body.lastError).toMatchObject({ kind: 'http_status' });
    // Every request that reached the server's path came from the gateway itself, and was refused there.
    await eventually(() => expect(answersTo(gw, `/mcp/${slug}`).length).toBeGreaterThan(0));
    expect(new Set(answersTo(gw, `/mcp/${slug}`))).toEqual(new Set([508]));
  });

  it('answers an MCP client of such a server with an upstream error naming the loop, after one refused turn', async () => {
    const slug = `self-${randomUUID().slice(0, 8)}`;
    const id = await register(gw, slug, `${gw.url}/mcp/${slug}`);
    // The sync the registration started is over once a refresh is (it joins the one about to run).
    await request(gw.url).post(`/api/v1/servers/${id}/refresh`).expect(502);
    await eventually(() => expect(answersTo(gw, `/mcp/${slug}`).length).toBeGreaterThan(0));
    const before = answersTo(gw, `/mcp/${slug}`).length;

    await expect(connectClient(`${gw.url}/mcp/${slug}`, await adminToken())).rejects.toThrow(LOOP);
    // The client's initialize (answered with the error) and the gateway's, refused: nothing more.
    await eventually(() => expect(answersTo(gw, `/mcp/${slug}`).slice(before)).toEqual([508, 200]));
  });

  it('fails a call on /mcp, the REST bridge and a health probe the same way once a server is moved onto its own path', async () => {
    const slug = `moved-${randomUUID().slice(0, 8)}`;
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({
        name: `com.example.loop/${slug}`,
        slug,
        url: deployment.upstream.url,
        auth: { type: 'entra-client-credentials', scope: `api://${GATEWAY_CLIENT_ID}/.default` },
      })
      .expect(201);
    const id = created.body.id as string;
    made.push({ gateway: gw, id });
    const token = await adminToken();
    await eventually(async () => {
      const listed = await request(gw.url).get(`/mcp/${slug}/tools`).set('authorization', `Bearer ${token}`);
      expect(listed.body.tools?.map((tool: { name: string }) => tool.name)).toEqual(['echoHai']);
    });
    // The tools stay in the catalog: a failed sync keeps the items of the last good one.
    await request(gw.url)
      .patch(`/api/v1/servers/${id}`)
      .send({ url: `${gw.url}/mcp/${slug}` })
      .expect(200);

    await eventually(async () => {
      const called = await request(gw.url)
        .post(`/mcp/${slug}/tools/echoHai`)
        .set('authorization', `Bearer ${token}`)
        .send({ userName: 'Ada' });
      expect(called.status).toBe(502);
      expect(called.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(called.body).toMatchObject({ code: 'upstream_error' });
      expect(called.body.detail).toMatch(/HTTP 508 Loop Detected/);
    });
    const { client } = await connectClient(`${gw.url}/mcp`, token);
    try {
      // /mcp reads the server from its catalog, which follows the change within its poll interval.
      await eventually(() =>
        expect(client.callTool({ name: `${slug}__echoHai`, arguments: { userName: 'Ada' } })).rejects.toThrow(LOOP),
      );
    } finally {
      await client.close();
    }
    const probed = await request(gw.url).post(`/api/v1/health/servers/${id}/probe`).expect(200);
    expect(probed.body).toMatchObject({ lastErrorKind: 'http_status' });
    expect(probed.body.lastError).toMatch(/HTTP 508 Loop Detected/);
    expect(answersTo(gw, `/mcp/${slug}`).every((status) => status === 508)).toBe(true);
  });

  it('takes a replica of the deployment (the same PUBLIC_URL) for itself', async () => {
    const replica = await startTestGateway('services', { ...entraEnv(issuer), UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    others.push(replica);
    const slug = `replica-${randomUUID().slice(0, 8)}`;
    await register(gw, slug, `${replica.url}/mcp/${slug}`);

    await expect(connectClient(`${gw.url}/mcp/${slug}`, await adminToken())).rejects.toThrow(LOOP);
    await eventually(() => expect(answersTo(replica, `/mcp/${slug}`).length).toBeGreaterThan(0));
    expect(new Set(answersTo(replica, `/mcp/${slug}`))).toEqual(new Set([508]));
  });

  it('lets another gateway (another PUBLIC_URL, its own database) stand in front of it', async () => {
    const database = await createScratchDatabase();
    dropDatabases.push(database.drop);
    const front = await startTestGateway('services', {
      ...entraEnv(issuer, { PUBLIC_URL: 'https://front.test' }),
      DATABASE_URL: database.url,
      REDIS_URL,
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
    });
    others.push(front);
    const slug = `front-${randomUUID().slice(0, 8)}`;
    await register(front, slug, `${gw.url}/mcp/${backSlug}`);

    const { client } = await connectClient(`${front.url}/mcp/${slug}`, await adminToken());
    try {
      const result = await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
      expect(result.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
    } finally {
      await client.close();
    }
  });

  describe('the Via header of an inbound request', () => {
    const own = viaPseudonymOf(GATEWAY_PUBLIC_URL);

    /** POST /mcp with `via` and no token: 508 when the edge takes it for the gateway's own, else the token's 401. */
    function postWithVia(via: string | string[], path = '/mcp'): Promise<number> {
      const url = new URL(path, gw.url);
      return new Promise((resolve, reject) => {
        const req = http.request(url, {
          method: 'POST',
          headers: { via, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }));
      });
    }

    it.each<[string, string | string[]]>([
      ['alone', `1.1 ${own}`],
      ['after a proxy', `1.0 fred, 1.1 proxy.example:8080, 1.1 ${own}`],
      ['with a comment', `1.1 ${own} (mcp-gateway)`],
      ['in a second Via line', ['1.1 proxy.example', `1.1 ${own}`]],
      ['without a protocol version', own],
    ])('refuses its own entry %s with 508 and a JSON-RPC error', async (_what, via) => {
      expect(await postWithVia(via)).toBe(508);
    });

    it.each<[string, string]>([
      ['another gateway', `1.1 ${viaPseudonymOf('https://front.test')}`],
      ['a proxy', '1.1 proxy.example:8080'],
      ['an empty header', ''],
      ['an oversized header', `1.1 ${'x'.repeat(12_000)}`],
      ['a truncated entry', `1.1 ${own.slice(0, -1)}`],
      ['text that is no Via', '\u00ff\u00fe;;;,,,()'],
    ])('lets %s through to the token check', async (_what, via) => {
      expect(await postWithVia(via)).toBe(401);
    });

    it('answers 508 on every path under MCP_PREFIX, through the POST lane and Express alike', async () => {
      const res = await request(gw.url).get(`/mcp/${backSlug}`).set('via', `1.1 ${own}`).expect(508);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, message: expect.stringMatching(/^Loop Detected: this request came from this gateway/) },
      });
      expect(await postWithVia(`1.1 ${own}`, `/mcp/${backSlug}`)).toBe(508);
      expect(await postWithVia(`1.1 ${own}`, `/mcp/${backSlug}/tools/echoHai`)).toBe(508);
      expect(await postWithVia(`1.1 ${own}`, '/mcp?stateless=1')).toBe(508);
    });
  });

  describe('registration', () => {
    it.each([
      `${GATEWAY_PUBLIC_URL}/mcp`,
      `${GATEWAY_PUBLIC_URL}/mcp/`,
      `${GATEWAY_PUBLIC_URL}/mcp/github`,
      'HTTPS://GATEWAY.TEST:443/mcp/github?x=1',
      `${GATEWAY_PUBLIC_URL}/api/../mcp/github`,
    ])("refuses %s, this gateway's own MCP endpoint, naming the url", async (url) => {
      const res = await request(gw.url)
        .post('/api/v1/servers')
        .send({ name: `com.example.loop/own-${randomUUID().slice(0, 8)}`, url });
      if (res.status === 201) made.push({ gateway: gw, id: res.body.id as string });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body.errors).toEqual([
        {
          field: 'url',
          message: "is this gateway's own MCP endpoint (PUBLIC_URL and MCP_PREFIX): it would relay to itself",
        },
      ]);
    });

    it('refuses a change of URL onto it, and keeps the server as it was', async () => {
      const res = await request(gw.url)
        .patch(`/api/v1/servers/${backSlug}`)
        .send({ url: `${GATEWAY_PUBLIC_URL}/mcp/${backSlug}` })
        .expect(400);
      expect(res.body.errors.map((error: { field: string }) => error.field)).toEqual(['url']);
      const kept = await request(gw.url).get(`/api/v1/servers/${backSlug}`).expect(200);
      expect(kept.body.url).toBe(deployment.upstream.url);
    });
  });
});
