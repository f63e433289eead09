import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import request from 'supertest';
import { UpstreamPool } from '../src/mcp/upstream-pool';
import { LOOP_HEADER, MAX_INCOMING_VIA, viaPseudonymOf } from '../src/upstream/gateway-via';
import { defaultTokenReply, entraEnv, GATEWAY_CLIENT_ID, type LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { type GuardedUpstream, guardUpstream } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { initializeRaw, mcpHeaders } from './support/raw-mcp';
import { PROBLEM_JSON } from './support/registry';
import { createScratchDatabase, REDIS_URL } from './support/services';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

/** Where the gateway's own requests come back to it from, in these tests: its PUBLIC_URL (entraEnv's). */
const GATEWAY_PUBLIC_URL = 'https://gateway.test';
const LOOP =
  /Upstream \S+ failed: the upstream answered HTTP 400 Loop Detected: the server's URL leads back to this gateway/;

/**
 * An upstream URL that leads back to the gateway (its own `/mcp/{slug}`), with upstream credentials the gateway
 * accepts (a client-credentials token for its own API): the gateway's request comes back to it carrying its `Via`
 * entry and is refused with 400 at once, instead of being relayed again at every hop until the per-IP limit ran dry
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
    expect(refreshed.body.detail).toMatch(/HTTP 400 Loop Detected: the server's URL leads back to this gateway/);
    const caps = await request(gw.url).get(`/api/v1/servers/${id}/capabilities`).expect(200);
    expect(caps.body.lastError).toMatchObject({ kind: 'http_status' });
    // Every request that reached the server's path came from the gateway itself, and was refused there.
    await eventually(() => expect(answersTo(gw, `/mcp/${slug}`).length).toBeGreaterThan(0));
    expect(new Set(answersTo(gw, `/mcp/${slug}`))).toEqual(new Set([400]));
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
    await eventually(() => expect(answersTo(gw, `/mcp/${slug}`).slice(before)).toEqual([400, 200]));
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
      expect(called.body.detail).toMatch(/HTTP 400 Loop Detected/);
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
    expect(probed.body.lastError).toMatch(/HTTP 400 Loop Detected/);
    expect(answersTo(gw, `/mcp/${slug}`).every((status) => status === 400)).toBe(true);
  });

  it('takes a replica of the deployment (the same PUBLIC_URL) for itself', async () => {
    const replica = await startTestGateway('services', { ...entraEnv(issuer), UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    others.push(replica);
    const slug = `replica-${randomUUID().slice(0, 8)}`;
    await register(gw, slug, `${replica.url}/mcp/${slug}`);

    await expect(connectClient(`${gw.url}/mcp/${slug}`, await adminToken())).rejects.toThrow(LOOP);
    await eventually(() => expect(answersTo(replica, `/mcp/${slug}`).length).toBeGreaterThan(0));
    expect(new Set(answersTo(replica, `/mcp/${slug}`))).toEqual(new Set([400]));
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

  describe('through two gateways, each with a server of the other', () => {
    /** Another gateway (its own PUBLIC_URL and database), on the same Redis and token issuer. */
    let other: TestGateway;
    const otherVia = viaPseudonymOf('https://other.test');

    beforeAll(async () => {
      const database = await createScratchDatabase();
      dropDatabases.push(database.drop);
      other = await startTestGateway('services', {
        ...entraEnv(issuer, { PUBLIC_URL: 'https://other.test' }),
        DATABASE_URL: database.url,
        REDIS_URL,
        UPSTREAM_ALLOWED_HOSTS: 'loopback',
      });
      others.push(other);
    });

    it('refuses the loop at the first gateway it comes back to, and tells its client the URL leads back to it', async () => {
      const here = `here-${randomUUID().slice(0, 8)}`;
      const there = `there-${randomUUID().slice(0, 8)}`;
      await register(gw, here, `${other.url}/mcp/${there}`);
      const thereId = await register(other, there, `${gw.url}/mcp/${here}`);
      // The other gateway's discovery went round too: refused by it when it came back, through this gateway.
      const refreshed = await request(other.url).post(`/api/v1/servers/${thereId}/refresh`).expect(502);
      expect(refreshed.body.detail).toMatch(/HTTP 400 Loop Detected: the server's URL leads back to this gateway/);
      await eventually(() => expect(answersTo(other, `/mcp/${there}`)).toContain(400));
      const beforeHere = answersTo(gw, `/mcp/${here}`).length;
      const beforeThere = answersTo(other, `/mcp/${there}`).length;

      await expect(connectClient(`${gw.url}/mcp/${here}`, await adminToken())).rejects.toThrow(LOOP);
      // One turn each: this gateway refused its own request, come back through the other, which passed the refusal
      // back as one; the client's initialize got the error.
      await eventually(() => expect(answersTo(gw, `/mcp/${here}`).slice(beforeHere)).toEqual([400, 200]));
      expect(answersTo(other, `/mcp/${there}`).slice(beforeThere)).toEqual([400]);
      // Audited where the client called, as the upstream's failure, as is each discovery of the other gateway's that
      // came through (a refusal passed on).
      await eventually(async () => {
        const audited = await request(gw.url).get('/api/v1/audit').query({ server: here, method: 'initialize' });
        const records = audited.body.records as Record<string, unknown>[];
        expect(records.length).toBeGreaterThanOrEqual(2);
        for (const record of records) {
          expect(record).toMatchObject({ decision: 'allowed', outcome: 'upstream_error', errorKind: 'http_status' });
        }
      });
    });

    it("passes a refusal met through the other gateway's /mcp on as one: the client is told the URL leads back here", async () => {
      const there = `agg-there-${randomUUID().slice(0, 8)}`;
      const here = `agg-here-${randomUUID().slice(0, 8)}`;
      const token = await adminToken();
      const auth = { authorization: `Bearer ${token}` };
      // A server of the other gateway reached through this one, and this one's server the other's /mcp.
      await register(other, there, `${gw.url}/mcp/${backSlug}`);
      await eventually(async () => {
        const listed = await request(other.url).get(`/mcp/${there}/tools`).set(auth);
        expect(listed.body.tools?.map((tool: { name: string }) => tool.name)).toEqual(['echoHai']);
      });
      await register(gw, here, `${other.url}/mcp`);
      const tool = `${there}__echoHai`;
      await eventually(async () => {
        const listed = await request(gw.url).get(`/mcp/${here}/tools`).set(auth);
        expect(listed.body.tools?.map((listedTool: { name: string }) => listedTool.name)).toContain(tool);
      });

      // The call goes here, then to the other gateway's /mcp, then to its server, which leads back here.
      const { client } = await connectClient(`${gw.url}/mcp/${here}`, token);
      try {
        await expect(client.callTool({ name: tool, arguments: { userName: 'Ada' } })).rejects.toThrow(LOOP);
      } finally {
        await client.close();
      }

      // A client of the other gateway's /mcp whose own Via names this gateway gets the 400 of the other's /mcp/{slug}
      // for a lone call, and its in-band error among the answers of a batch; lists ask no upstream.
      const session = await initializeRaw(`${other.url}/mcp`, token);
      const send = (body: unknown) =>
        request(other.url)
          .post('/mcp')
          .set({
            ...mcpHeaders(token, session),
            accept: 'application/json',
            via: `1.1 ${viaPseudonymOf(GATEWAY_PUBLIC_URL)}`,
          })
          .send(body as object);
      const call = (id: number) => ({
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name: tool, arguments: { userName: 'Ada' } },
      });
      const lone = await send(call(7)).expect(400);
      expect(lone.headers[LOOP_HEADER]).toBe(viaPseudonymOf(GATEWAY_PUBLIC_URL));
      expect(lone.body).toMatchObject({
        jsonrpc: '2.0',
        id: 7,
        error: {
          code: -32603,
          message: expect.stringMatching(
            /^Upstream \S+ failed: the upstream answered HTTP 400 Loop Detected: the server's URL leads back to gateway mcp-gateway-[0-9a-f]{16}, which/,
          ),
        },
      });
      const batch = await send([call(8), { jsonrpc: '2.0', id: 9, method: 'tools/list' }]).expect(200);
      expect(batch.headers[LOOP_HEADER]).toBeUndefined();
      expect(batch.body).toMatchObject([
        { id: 8, error: { code: -32603, message: expect.stringMatching(/Loop Detected/) } },
        { id: 9, result: { tools: expect.arrayContaining([expect.objectContaining({ name: tool })]) } },
      ]);
      const listed = await send({ jsonrpc: '2.0', id: 10, method: 'tools/list' }).expect(200);
      expect(listed.body.result.tools.map((listedTool: { name: string }) => listedTool.name)).toContain(tool);
    });

    it("words the other gateway's JSON-RPC error for a server it cannot reach once in discovery's error", async () => {
      const down = `down-${randomUUID().slice(0, 8)}`;
      // Port 9 (discard): nothing listens there, so this gateway answers initialize with a JSON-RPC error.
      await register(gw, down, 'http://127.0.0.1:9/mcp');
      const through = await register(other, `through-${randomUUID().slice(0, 8)}`, `${gw.url}/mcp/${down}`);
      const refreshed = await request(other.url).post(`/api/v1/servers/${through}/refresh`).expect(502);
      expect(refreshed.body.detail).toMatch(
        new RegExp(`MCP error -32603: Upstream ${down} failed: connection refused`),
      );
      expect(refreshed.body.detail).not.toMatch(/MCP error -32603: MCP error/);
      const caps = await request(other.url).get(`/api/v1/servers/${through}/capabilities`).expect(200);
      expect(caps.body.lastError).toMatchObject({
        kind: 'protocol',
        message: `MCP error -32603: Upstream ${down} failed: connection refused`,
      });
    });

    it("does not let a client that writes a gateway's entry into its Via open the server's circuit for everyone", async () => {
      const slug = `via-${randomUUID().slice(0, 8)}`;
      await register(other, slug, `${gw.url}/mcp/${backSlug}`);
      const token = await adminToken();
      const call = () =>
        request(other.url)
          .post(`/mcp/${slug}/tools/echoHai`)
          .set('authorization', `Bearer ${token}`)
          .send({ userName: 'Ada' });
      // In the catalog (listed from it, no upstream reached): the first call opens the pool's session with the server.
      await eventually(async () => {
        const listed = await request(other.url).get(`/mcp/${slug}/tools`).set('authorization', `Bearer ${token}`);
        expect(listed.body.tools?.map((tool: { name: string }) => tool.name)).toEqual(['echoHai']);
      });
      const pool = other.gateway.app.get(UpstreamPool);
      const sessions = pool.size;

      // The other gateway passes the client's Via on; this one refuses the request as its own come back.
      for (let i = 0; i < 6; i++) {
        const forged = await call().set('via', `1.1 ${viaPseudonymOf(GATEWAY_PUBLIC_URL)}`);
        expect(forged.status).toBe(400);
        expect(forged.headers['content-type']).toMatch(PROBLEM_JSON);
        expect(forged.body).toMatchObject({
          code: 'validation_error',
          errors: [{ field: 'Via', message: expect.stringMatching(/^names gateway mcp-gateway-[0-9a-f]{16}, which/) }],
        });
      }
      // The session, shared by every caller, was opened as the other gateway's own, without the client's Via.
      expect(pool.size).toBe(sessions + 1);
      // Five failures in a row would have opened the circuit: the server still answers everyone else.
      const clean = await call().expect(200);
      expect(clean.body).toMatchObject({ content: [{ type: 'text', text: 'Hello, Ada!' }] });
      // Its own entry in a client's Via is refused by the other gateway itself, before any upstream is reached.
      const own = await call().set('via', `1.1 ${otherVia}`).expect(400);
      expect(own.headers[LOOP_HEADER]).toBe(otherVia);
    });
  });

  describe('the Via header of an inbound request', () => {
    const own = viaPseudonymOf(GATEWAY_PUBLIC_URL);

    /**
     * POST /mcp with `via` and no token: 400 with LOOP_HEADER when the edge takes it for the gateway's own, 431 when
     * it is too long to pass on, else the token's 401.
     */
    function postWithVia(via: string | string[], path = '/mcp'): Promise<{ status: number; loop?: string }> {
      const url = new URL(path, gw.url);
      return new Promise((resolve, reject) => {
        const req = http.request(url, {
          method: 'POST',
          headers: { via, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        });
        req.on('response', (res) => {
          res.resume();
          const loop = res.headers[LOOP_HEADER] as string | undefined;
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(loop !== undefined ? { loop } : {}) }));
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
      ['at the end of a Via too long to pass on', `1.1 ${'x'.repeat(2_000)}, 1.1 ${own}`],
    ])('refuses its own entry %s with 400, naming itself in its loop header', async (_what, via) => {
      expect(await postWithVia(via)).toEqual({ status: 400, loop: own });
    });

    it.each<[string, string]>([
      ['another gateway', `1.1 ${viaPseudonymOf('https://front.test')}`],
      ['a proxy', '1.1 proxy.example:8080'],
      ['an empty header', ''],
      ['a header as long as it may be', `1.1 ${'x'.repeat(MAX_INCOMING_VIA - 4)}`],
      ['a truncated entry', `1.1 ${own.slice(0, -1)}`],
      ['text that is no Via', '\u00ff\u00fe;;;,,,()'],
    ])('lets %s through to the token check', async (_what, via) => {
      expect(await postWithVia(via)).toEqual({ status: 401 });
    });

    it('refuses a Via longer than it passes on with 431 and a JSON-RPC error', async () => {
      expect(await postWithVia(`1.1 ${'x'.repeat(MAX_INCOMING_VIA - 3)}`)).toEqual({ status: 431 });
      expect(await postWithVia(['1.1 a'.repeat(150), '1.1 b'.repeat(150)])).toEqual({ status: 431 });
      const res = await request(gw.url)
        .post('/mcp')
        .set('via', `1.1 ${'x'.repeat(12_000)}`)
        .send({ jsonrpc: '2.0', id: 1, method: 'ping' })
        .expect(431);
      expect(res.body).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: {
          code: -32600,
          message: `The Via header is 12004 characters long, more than the 1024 this gateway passes on`,
        },
      });
    });

    it('answers 400 on every path under MCP_PREFIX, through the POST lane and Express alike, logged as a client error', async () => {
      const res = await request(gw.url).get(`/mcp/${backSlug}`).set('via', `1.1 ${own}`).expect(400);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers[LOOP_HEADER]).toBe(own);
      expect(res.body).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: {
          code: -32600,
          message: expect.stringMatching(/^Loop Detected: this request has passed through this gateway before/),
        },
      });
      const refused = { status: 400, loop: own };
      expect(await postWithVia(`1.1 ${own}`, `/mcp/${backSlug}`)).toEqual(refused);
      expect(await postWithVia(`1.1 ${own}`, `/mcp/${backSlug}/tools/echoHai`)).toEqual(refused);
      expect(await postWithVia(`1.1 ${own}`, '/mcp?stateless=1')).toEqual(refused);
      // Counted as client errors, under the route of refusals before routing (README's metrics: `/mcp/*` whichever path
      // they were sent to, through the POST lane and Express alike), and in the access log as a warning, not as errors
      // of the gateway's.
      const metrics = (await request(gw.url).get('/metrics').expect(200)).text;
      expect(metrics).toMatch(/^mcp_gateway_http_requests_total\{method="GET",route="\/mcp\/\*",status="400"\} \d+$/m);
      // (Only the edge's route: earlier tests of this gateway answered refreshes and bridge calls 502, as they should.)
      expect(metrics).not.toMatch(/^mcp_gateway_http_requests_total\{[^}]*route="\/mcp\/\*",status="5\d\d"\}/m);
      await eventually(() => {
        const logged = gw.logs.lines.filter(
          (line) => line.msg === 'request completed' && (line.req as { url?: string }).url === `/mcp/${backSlug}`,
        );
        expect(logged.map((line) => [line.level, (line.res as { statusCode: number }).statusCode])).toContainEqual([
          40, 400,
        ]);
      });
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
