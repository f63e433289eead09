import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import request from 'supertest';
import { DEFAULT_JWKS_COOLDOWN_MS } from '../src/auth/signing-key-cache';
import { TokenVerifier } from '../src/auth/token-verifier';
import { PROBE_PATH, startProbeGateway } from './support/auth-gateway';
import {
  CALLER_APP_ID,
  entraEnv,
  FOREIGN_TENANT,
  GATEWAY_CLIENT_ID,
  GUEST_TENANT,
  HOME_TENANT,
  LocalEntraIssuer,
  tamper,
} from './support/entra-issuer';
import { eventually } from './support/eventually';
import { rawRequest } from './support/raw-request';
import type { TestGateway } from './support/gateway';

const PRM = 'https://gateway.test/.well-known/oauth-protected-resource/mcp';
const SCOPE = `api://${GATEWAY_CLIENT_ID}/access_as_user`;

/** The parameters of a `WWW-Authenticate: Bearer …` challenge. */
/** What the probe route answers an admitted request with (its refusals carry neither field). */
interface ProbeAnswer {
  principal: { oid: string };
}

/** A JWT's claims, unverified. */
function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function challengeOf(header: string | undefined): Record<string, string> {
  expect(header).toMatch(/^Bearer /);
  const params: Record<string, string> = {};
  for (const match of (header ?? '').slice(7).matchAll(/([a-z_]+)="([^"]*)"/g)) params[match[1]!] = match[2]!;
  return params;
}

describe('Entra ID tokens on MCP_PREFIX', () => {
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    gw = await startProbeGateway(entraEnv(issuer));
  });

  afterAll(async () => {
    await gw?.close();
    await issuer?.stop();
  });

  const probe = (token?: string) => {
    const req = request(gw.url).get(PROBE_PATH);
    return token === undefined ? req : req.set('authorization', `Bearer ${token}`);
  };

  async function expectRefused(token: string, description: RegExp): Promise<void> {
    const res = await probe(token);
    expect(res.status).toBe(401);
    expect(challengeOf(res.headers['www-authenticate'])).toEqual({
      error: 'invalid_token',
      error_description: expect.stringMatching(description),
      resource_metadata: PRM,
      scope: SCOPE,
    });
    expect(res.body).toEqual({ error: 'invalid_token', error_description: expect.stringMatching(description) });
  }

  describe('a valid token', () => {
    it('passes with a v2 token and attaches the principal and the SDK auth info', async () => {
      const claims = { oid: randomUUID(), roles: ['Gateway.Reader'], groups: ['g1'] };
      const token = await issuer.token(claims);
      const res = await probe(token).expect(200);
      expect(res.body.principal).toEqual({
        tid: HOME_TENANT,
        oid: claims.oid,
        clientId: CALLER_APP_ID,
        appOnly: false,
        scopes: ['access_as_user'],
        roles: ['Gateway.Reader'],
        groups: ['g1'],
        name: 'Ada Lovelace',
      });
      expect(res.body.auth).toEqual({
        clientId: CALLER_APP_ID,
        scopes: ['access_as_user'],
        expiresAt: expect.any(Number),
        extra: { principal: res.body.principal },
        tokenMatches: true,
      });
    });

    it('passes with a v1 token (issuer sts.windows.net, App ID URI audience, appid), its keys from /discovery/keys', async () => {
      const token = await issuer.token({}, { version: 1 });
      const res = await probe(token).expect(200);
      expect(res.body.principal).toMatchObject({ clientId: CALLER_APP_ID, appOnly: false });
      expect(issuer.jwksFetches(HOME_TENANT, 1)).toBe(1);
    });

    it('passes with an app-only token (roles, no scp) without any scope requirement', async () => {
      const token = await issuer.token({ scp: undefined, roles: ['Gateway.Admin'], idtyp: 'app' });
      const res = await probe(token).expect(200);
      expect(res.body.principal).toMatchObject({ appOnly: true, scopes: [], roles: ['Gateway.Admin'] });
    });

    it('passes with a token from a second allowed tenant', async () => {
      const res = await probe(await issuer.token({}, { tid: GUEST_TENANT })).expect(200);
      expect(res.body.principal.tid).toBe(GUEST_TENANT);
    });

    it('falls through to 404 on a path under MCP_PREFIX that nothing serves', async () => {
      const token = await issuer.token();
      const res = await request(gw.url).get('/mcp/no-such-thing/deeper').set('authorization', `Bearer ${token}`);
      expect(res.status).toBe(404);
      // The token passes: what answers is the MCP endpoint itself (here, refusing an empty body).
      await request(gw.url).post('/mcp').set('authorization', `Bearer ${token}`).send({}).expect(400);
    });

    it('accepts the scheme name in any case', async () => {
      await request(gw.url)
        .get(PROBE_PATH)
        .set('authorization', `bearer ${await issuer.token()}`)
        .expect(200);
    });
  });

  describe('no or unusable credentials', () => {
    it('answers 401 without an error code when no token is sent (RFC 6750 §3.1), on any path under MCP_PREFIX', async () => {
      for (const path of ['/mcp', '/mcp/', '/mcp/unknown/path', PROBE_PATH]) {
        const res = await request(gw.url).get(path);
        expect(res.status).toBe(401);
        const challenge = challengeOf(res.headers['www-authenticate']);
        expect(challenge.error).toBeUndefined();
        expect(challenge.scope).toBe(SCOPE);
      }
      const post = await request(gw.url).post('/mcp').send({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      expect(post.status).toBe(401);
    });

    it('points each 401 at the metadata of the resource asked for', async () => {
      const aggregate = await request(gw.url).post('/mcp');
      expect(challengeOf(aggregate.headers['www-authenticate']).resource_metadata).toBe(PRM);
      const one = await request(gw.url).post('/mcp/weather/tools/forecast');
      expect(challengeOf(one.headers['www-authenticate']).resource_metadata).toBe(`${PRM}/weather`);
      const oddly = await request(gw.url).get('/mcp/Not_A_Slug');
      expect(challengeOf(oddly.headers['www-authenticate']).resource_metadata).toBe(PRM);
    });

    it('leaves paths outside MCP_PREFIX alone', async () => {
      await request(gw.url).get('/health/live').expect(200);
      await request(gw.url).get('/api/v1').expect(200);
      await request(gw.url).get('/mcpx').expect(404);
    });

    it('refuses a token in the query string, even next to a valid header, its parameter named in any case or form', async () => {
      const token = await issuer.token();
      for (const req of [
        request(gw.url).get(`${PROBE_PATH}?access_token=${token}`),
        request(gw.url).get(`${PROBE_PATH}?x=1&access_token=${token}`).set('authorization', `Bearer ${token}`),
        request(gw.url).get(`${PROBE_PATH}?ACCESS_TOKEN=${token}`),
        request(gw.url).get(`${PROBE_PATH}?Access_Token=${token}`).set('authorization', `Bearer ${token}`),
        request(gw.url).post(`/mcp?acc%45ss_tok%65n=${token}`).set('authorization', `Bearer ${token}`),
        // As the access log's censor reads the name: with a `[...]` suffix, spaces around it.
        request(gw.url).get(`${PROBE_PATH}?access_token%5B%5D=${token}`),
        request(gw.url).get(`${PROBE_PATH}?access_token[0]=${token}`).set('authorization', `Bearer ${token}`),
        request(gw.url).get(`${PROBE_PATH}?+access_token=${token}`),
        // Parted by ;, as some servers read a query.
        request(gw.url).get(`${PROBE_PATH}?x=1;access_token=${token}`),
      ]) {
        const res = await req;
        expect(res.status).toBe(400);
        expect(challengeOf(res.headers['www-authenticate'])).toMatchObject({
          error: 'invalid_request',
          error_description: 'access tokens are accepted in the Authorization header only',
          resource_metadata: PRM,
        });
      }
    });

    it('refuses a token after a # in the raw request target, which Node passes through, and logs it censored', async () => {
      const token = await issuer.token();
      const [header, payload, signature] = token.split('.') as [string, string, string];
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
      const sent = [
        // Read as one query, the token was the value of x: neither refused nor censored.
        ['GET', `${PROBE_PATH}?x=1#access_token=${token}`],
        ['POST', `/mcp?x=1#access_token=${token}`],
        ['POST', `/mcp#access_token=${token}&token_type=Bearer`],
        ['GET', `${PROBE_PATH}#/callback?ACCESS_TOKEN=${token}`],
      ] as const;
      for (const [method, target] of sent) {
        const id = randomUUID();
        const res = await rawRequest(
          gw.url,
          method,
          target,
          {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'x-request-id': id,
          },
          method === 'POST' ? body : '',
        );
        expect(res.status).toBe(400);
        expect(res.text).toContain('error="invalid_request"');
        expect(res.text).toContain('access tokens are accepted in the Authorization header only');
        await eventually(() => {
          const line = gw.logs.lines.find(
            (entry) => entry.msg === 'request completed' && (entry.req as { id?: string } | undefined)?.id === id,
          );
          expect((line?.req as { url?: string } | undefined)?.url).toMatch(/access_token=\[redacted\]/i);
        });
      }
      const text = JSON.stringify(gw.logs.lines);
      for (const part of [header, payload, signature]) expect(text).not.toContain(part);
    });

    it.each([
      ['no token', 'Bearer'],
      ['no token, a space', 'Bearer '],
      ['two tokens', 'Bearer a.b.c d.e.f'],
      ['characters outside b64token', 'Bearer a.b.c;drop'],
      ['the scheme in capitals', 'BEARER a.b.c;drop'],
    ])('answers a malformed Bearer header (%s) with 400 invalid_request (RFC 6750 §3.1)', async (_case, header) => {
      const res = await request(gw.url).get(PROBE_PATH).set('authorization', header);
      expect(res.status).toBe(400);
      expect(challengeOf(res.headers['www-authenticate'])).toMatchObject({
        error: 'invalid_request',
        error_description: 'the Authorization header must be: Bearer <token>',
        resource_metadata: PRM,
      });
    });

    it.each([
      ['Basic', 'Basic dXNlcjpwYXNz'],
      ['a bare token', 'eyJhbGciOiJSUzI1NiJ9.e30.sig'],
      ['a scheme that starts like Bearer', 'Bearerx a.b.c'],
      ['DPoP', 'DPoP a.b.c'],
    ])(
      'answers another scheme (%s) as no credentials: 401 without an error code (RFC 6750 §3)',
      async (_case, header) => {
        const res = await request(gw.url).get(PROBE_PATH).set('authorization', header);
        expect(res.status).toBe(401);
        expect(challengeOf(res.headers['www-authenticate'])).toEqual({ resource_metadata: PRM, scope: SCOPE });
      },
    );

    it('answers a token that is not a JWT with 401 invalid_token', async () => {
      await expectRefused('not-a-jwt', /not a JWT/);
      await expectRefused('a.b.c', /malformed/);
    });

    it('answers a huge Authorization header with 400, and one beyond the HTTP limit with 431, never a 5xx', async () => {
      const huge = await probe(`${'a'.repeat(12_000)}.${'b'.repeat(1_000)}.c`);
      expect(huge.status).toBe(400);
      expect(challengeOf(huge.headers['www-authenticate'])).toMatchObject({
        error: 'invalid_request',
        error_description: 'the access token is too large',
      });
      const beyond = await rawStatus(gw.url, PROBE_PATH, `Bearer ${'a'.repeat(20_000)}`);
      expect(beyond).toBe(431);
      await request(gw.url).get('/health/live').expect(200);
    });
  });

  describe('every rule refuses with 401 invalid_token', () => {
    const now = () => Math.floor(Date.now() / 1000);

    it('expired (beyond the clock tolerance)', async () => {
      await expectRefused(await issuer.token({ exp: now() - 120, iat: now() - 3700, nbf: now() - 3700 }), /expired/);
    });

    it('accepts an expiry within the clock tolerance', async () => {
      await probe(await issuer.token({ exp: now() - 30 })).expect(200);
    });

    it('not yet valid (nbf beyond the clock tolerance)', async () => {
      await expectRefused(await issuer.token({ nbf: now() + 600 }), /not valid yet/);
    });

    it('wrong audience', async () => {
      await expectRefused(await issuer.token({ aud: '00000003-0000-0000-c000-000000000000' }), /audience/);
      await expectRefused(await issuer.token({ aud: randomUUID() }), /audience/);
    });

    it('wrong issuer', async () => {
      await expectRefused(
        await issuer.token({ iss: `https://evil.example/${HOME_TENANT}/v2.0` }),
        /issuer is not accepted/,
      );
      await expectRefused(await issuer.token({ iss: `${issuer.url}/${HOME_TENANT}` }), /issuer is not accepted/);
    });

    it('issuer and tid naming different tenants', async () => {
      await expectRefused(
        await issuer.token({ iss: `${issuer.url}/${GUEST_TENANT}/v2.0` }),
        /issuer does not match its tenant/,
      );
      await expectRefused(
        await issuer.token({ iss: `https://sts.windows.net/${GUEST_TENANT}/` }, { version: 1 }),
        /issuer does not match its tenant/,
      );
    });

    it('tenant not allowed (and its keys never fetched)', async () => {
      await issuer.currentKey(FOREIGN_TENANT);
      await expectRefused(await issuer.token({}, { tid: FOREIGN_TENANT }), /tenant is not allowed/);
      await expectRefused(await issuer.token({ tid: 'common' }), /no valid tid/);
      expect(issuer.jwksFetches(FOREIGN_TENANT)).toBe(0);
    });

    it('key not in the JWKS: a known kid, but signed by a key the tenant never published', async () => {
      const published = await issuer.currentKey(HOME_TENANT);
      const forger = await issuer.unpublishedKey();
      await expectRefused(await issuer.token({}, { key: { ...forger, kid: published.kid } }), /signature is not valid/);
    });

    it('alg none', async () => {
      await expectRefused(issuer.unsignedToken(), /algorithm is not accepted/);
    });

    it('HS256 signed with the public key', async () => {
      await expectRefused(await issuer.hs256WithPublicKey(), /algorithm is not accepted/);
    });

    it('no kid in the header', async () => {
      await expectRefused(await issuer.token({}, { header: { kid: undefined } }), /names no signing key/);
    });

    it('tampered payload', async () => {
      const token = await issuer.token({ roles: ['Gateway.Reader'] });
      await expectRefused(tamper(token, { ...issuer.claims(), roles: ['Gateway.Admin'] }), /signature is not valid/);
    });

    it('neither scp nor roles (an ID token is not an access token)', async () => {
      await expectRefused(await issuer.token({ scp: undefined, roles: undefined }), /neither scp nor roles/);
      await expectRefused(await issuer.token({ scp: undefined, roles: [] }), /neither scp nor roles/);
    });

    it('no oid, or no client', async () => {
      await expectRefused(await issuer.token({ oid: undefined }), /no oid/);
      await expectRefused(await issuer.token({ azp: undefined }), /names no client/);
    });

    it('v1 tokens when they are not enabled', async () => {
      const strict = await startProbeGateway(entraEnv(issuer, { AZURE_ACCEPT_V1_TOKENS: 'false' }));
      try {
        const res = await request(strict.url)
          .get(PROBE_PATH)
          .set('authorization', `Bearer ${await issuer.token({}, { version: 1 })}`);
        expect(res.status).toBe(401);
        expect(challengeOf(res.headers['www-authenticate']).error_description).toMatch(/issuer is not accepted/);
      } finally {
        await strict.close();
      }
    });

    it('logs the reason, never the token', async () => {
      const token = await issuer.token({ aud: randomUUID() });
      await probe(token).expect(401);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const text = JSON.stringify(gw.logs.lines);
      expect(text).toContain('the token audience is not this gateway');
      expect(text).not.toContain(token.split('.')[2]);
    });
  });

  it('never logs a token sent in the query string, on any path', async () => {
    const token = await issuer.token();
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const sent: { id: string; send: () => request.Test }[] = [
      `/mcp/up/tools?access_token=${token}`,
      `/mcp?limit=1&ACCESS_TOKEN=${token}`,
      `/.well-known/oauth-protected-resource/mcp?access_token=${token}`,
      `/api/v1/servers?acc%65ss_token=${token}&code=${signature}&id_token=${payload}`,
    ].flatMap((path) => {
      const id = randomUUID();
      return [
        { id: `${id}-get`, send: () => request(gw.url).get(path).set('x-request-id', `${id}-get`) },
        {
          id: `${id}-post`,
          send: () =>
            request(gw.url)
              .post(path)
              .set('x-request-id', `${id}-post`)
              .set('content-type', 'application/json')
              .send({ jsonrpc: '2.0', id: 1, method: 'ping' }),
        },
      ];
    });
    for (const { send } of sent) await send();
    const completed = (id: string) =>
      gw.logs.lines.find(
        (line) => line.msg === 'request completed' && (line.req as { id?: string } | undefined)?.id === id,
      );
    await eventually(() => {
      for (const { id } of sent) expect(completed(id)).toBeDefined();
    });
    for (const { id } of sent) expect((completed(id)!.req as { url: string }).url).toContain('=[redacted]');
    const text = JSON.stringify(gw.logs.lines);
    for (const part of [header, payload, signature]) expect(text).not.toContain(part);
  });

  describe('on one kept-alive connection', () => {
    let agent: http.Agent;
    const sockets = new Set<unknown>();

    beforeEach(() => {
      agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      sockets.clear();
    });

    afterEach(() => agent.destroy());

    /** GET `path` on the agent's one connection, with `token` as the bearer. */
    const send = (token: string, path = PROBE_PATH): Promise<{ status: number; body: ProbeAnswer }> =>
      new Promise((resolve, reject) => {
        const req = http.get(`${gw.url}${path}`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
          sockets.add(res.socket);
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as ProbeAnswer }));
        });
        req.on('error', reject);
      });

    it('checks each request: a token sent again is not verified again, any other token is', async () => {
      const verifier = gw.gateway.app.get(TokenVerifier);
      const ada = { oid: randomUUID() };
      const [first, second] = [await issuer.token(ada), await issuer.token({ oid: randomUUID() })];
      const before = { ...verifier.stats };

      expect((await send(first)).body.principal.oid).toBe(ada.oid);
      expect((await send(first)).body.principal.oid).toBe(ada.oid);
      expect(verifier.stats.validations - before.validations).toBe(1);
      expect(verifier.stats.cacheHits - before.cacheHits).toBe(1);

      const other = await send(second);
      expect(other.status).toBe(200);
      expect(other.body.principal.oid).not.toBe(ada.oid);
      expect((await send(tamper(first, { ...decodePayload(first), oid: randomUUID() }))).status).toBe(401);
      expect((await send(await issuer.token({ ...ada, scp: 'Files.Read' }))).status).toBe(403);
      expect((await send(first, `${PROBE_PATH}?access_token=${first}`)).status).toBe(400);
      expect((await send(first)).body.principal.oid).toBe(ada.oid);
      expect(verifier.stats.validations - before.validations).toBe(3);
      expect(sockets.size).toBe(1);
    });

    it('verifies again a token that expired while its connection stayed open', async () => {
      const verifier = gw.gateway.app.get(TokenVerifier);
      const token = await issuer.token({ exp: Math.floor(Date.now() / 1000) + 1 });
      expect((await send(token)).status).toBe(200);
      // Past exp but within the clock tolerance: accepted, after a verification of its own.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const before = verifier.stats.validations;
      expect((await send(token)).status).toBe(200);
      expect(verifier.stats.validations).toBe(before + 1);
      expect(sockets.size).toBe(1);
    });
  });

  describe('insufficient scope', () => {
    it('answers a delegated token without the required scope with 403 insufficient_scope naming the scope', async () => {
      const res = await probe(await issuer.token({ scp: 'Files.Read' }));
      expect(res.status).toBe(403);
      expect(challengeOf(res.headers['www-authenticate'])).toEqual({
        error: 'insufficient_scope',
        error_description: expect.any(String),
        resource_metadata: PRM,
        scope: SCOPE,
      });
      expect(res.body.error).toBe('insufficient_scope');
    });
  });
});

describe('signing keys', () => {
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  // Fresh tenants per test: each starts with nothing cached.
  const tenants = Array.from({ length: 8 }, () => randomUUID());

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    gw = await startProbeGateway(entraEnv(issuer, { AZURE_ALLOWED_TENANTS: tenants.join(',') }));
  });

  afterAll(async () => {
    await gw?.close();
    await issuer?.stop();
  });

  const call = async (token: string) =>
    (await request(gw.url).get(PROBE_PATH).set('authorization', `Bearer ${token}`)).status;

  it('fetches a tenant’s keys once for many concurrent first verifications', async () => {
    const tid = tenants[0]!;
    await issuer.currentKey(tid);
    issuer.jwksDelayMs = 200;
    try {
      const tokens = await Promise.all(Array.from({ length: 20 }, () => issuer.token({}, { tid })));
      const statuses = await Promise.all(tokens.map(call));
      expect(statuses).toEqual(tokens.map(() => 200));
    } finally {
      issuer.jwksDelayMs = 0;
    }
    expect(issuer.jwksFetches(tid)).toBe(1);
  });

  it('refetches once on an unknown kid: a rotated key is accepted', async () => {
    const tid = tenants[1]!;
    expect(await call(await issuer.token({}, { tid }))).toBe(200);
    await issuer.rotate(tid);
    expect(await call(await issuer.token({}, { tid }))).toBe(200);
    expect(issuer.jwksFetches(tid)).toBe(2);
  });

  it('refetches at most once per cooldown for kids that stay unknown', async () => {
    const tid = tenants[2]!;
    expect(await call(await issuer.token({}, { tid }))).toBe(200);
    for (let i = 0; i < 5; i++) {
      const stranger = await issuer.unpublishedKey();
      const res = await request(gw.url)
        .get(PROBE_PATH)
        .set('authorization', `Bearer ${await issuer.token({}, { tid, key: stranger })}`);
      expect(res.status).toBe(401);
      expect(challengeOf(res.headers['www-authenticate']).error_description).toBe('the token signing key is not known');
    }
    expect(issuer.jwksFetches(tid)).toBe(2);
  });

  it('answers 503, not 401, when the keys of a tenant cannot be fetched at all, and fetches them once per cooldown', async () => {
    const tid = tenants[3]!;
    issuer.jwksDown = true;
    try {
      const valid = await issuer.token({}, { tid });
      // What anyone can make: RS256 in the header, a made-up kid, an allowed tid, and no valid signature.
      const forged = await issuer.token({}, { tid, key: await issuer.unpublishedKey() });
      for (let i = 0; i < 10; i++) {
        for (const token of [valid, forged]) {
          const res = await request(gw.url).get(PROBE_PATH).set('authorization', `Bearer ${token}`);
          expect([res.status, res.body.error]).toEqual([503, 'temporarily_unavailable']);
          expect(retryAfterOf(res)).toBeLessThanOrEqual(JWKS_COOLDOWN_SECONDS);
        }
      }
      expect(issuer.jwksFetches(tid)).toBe(1);
    } finally {
      issuer.jwksDown = false;
    }
    // Back up, but within the cooldown of the failed fetch: still 503 at once, no fetch (src/auth/signing-key-cache.spec.ts
    // moves the clock past it).
    expect(await call(await issuer.token({}, { tid }))).toBe(503);
    expect(issuer.jwksFetches(tid)).toBe(1);
  });

  it('answers a token of a freshly rotated key 503, not 401, while the JWKS is down', async () => {
    const tid = tenants[5]!;
    const first = await issuer.currentKey(tid);
    expect(await call(await issuer.token({}, { tid }))).toBe(200);
    const rotated = await issuer.rotate(tid);
    issuer.jwksDown = true;
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(gw.url)
          .get(PROBE_PATH)
          .set('authorization', `Bearer ${await issuer.token({}, { tid, key: rotated })}`);
        expect([res.status, res.body.error]).toEqual([503, 'temporarily_unavailable']);
        expect(retryAfterOf(res)).toBeLessThanOrEqual(JWKS_COOLDOWN_SECONDS);
      }
      // The keys held keep serving, and the failed refetch is not tried again within its cooldown.
      expect(await call(await issuer.token({}, { tid, key: first }))).toBe(200);
      expect(issuer.jwksFetches(tid)).toBe(2);
    } finally {
      issuer.jwksDown = false;
    }
  });

  it('says in Retry-After when the keys will be fetched again: the time left of the cooldown, falling', async () => {
    const tid = tenants[6]!;
    issuer.jwksDown = true;
    try {
      const token = await issuer.token({}, { tid });
      const retryAfter = async () => {
        const res = await request(gw.url).get(PROBE_PATH).set('authorization', `Bearer ${token}`);
        expect(res.status).toBe(503);
        return retryAfterOf(res);
      };
      const first = await retryAfter();
      expect(first).toBeLessThanOrEqual(JWKS_COOLDOWN_SECONDS);
      // Whole seconds rounded up: a second later, the time left is at least a second less.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      expect(await retryAfter()).toBeLessThan(first);
      expect(issuer.jwksFetches(tid)).toBe(1);
    } finally {
      issuer.jwksDown = false;
    }
  });

  it('remembers verified tokens until they expire: a repeated token is not verified again', async () => {
    const verifier = gw.gateway.app.get(TokenVerifier);
    const token = await issuer.token({}, { tid: tenants[4]! });
    const before = { ...verifier.stats };
    for (let i = 0; i < 5; i++) expect(await call(token)).toBe(200);
    expect(verifier.stats.validations - before.validations).toBe(1);
    expect(verifier.stats.cacheHits - before.cacheHits).toBe(4);
  });

  it('does not serve an expired token from that memory', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.token({ exp: now + 1 }, { tid: tenants[4]! });
    expect(await call(token)).toBe(200);
    // Past exp but within the clock tolerance, the memory no longer answers: the token is verified again.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const verifier = gw.gateway.app.get(TokenVerifier);
    const before = verifier.stats.validations;
    expect(await call(token)).toBe(200);
    expect(verifier.stats.validations).toBe(before + 1);
  });
});

describe('a JWKS outage', () => {
  it('does not fail tokens whose keys are cached, even once the cache is stale', async () => {
    const issuer = await LocalEntraIssuer.start();
    const gw = await startProbeGateway(entraEnv(issuer, { AZURE_JWKS_CACHE_MAX_AGE_MS: '1000' }));
    try {
      const call = async () =>
        (
          await request(gw.url)
            .get(PROBE_PATH)
            .set('authorization', `Bearer ${await issuer.token()}`)
        ).status;
      expect(await call()).toBe(200);
      issuer.jwksDown = true;
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect(await call()).toBe(200);
      expect(await call()).toBe(200);
      // The stale keys were due for a refetch, which was tried (and failed).
      expect(issuer.jwksFetches(HOME_TENANT)).toBe(2);
    } finally {
      await gw.close();
      await issuer.stop();
    }
  });
});

const JWKS_COOLDOWN_SECONDS = DEFAULT_JWKS_COOLDOWN_MS / 1000;

/** A 503's Retry-After, which must be a whole number of seconds, at least 1. */
function retryAfterOf(res: request.Response): number {
  expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  return Number(res.headers['retry-after']);
}

/** Status of a request whose header Node's HTTP parser refuses before any app code runs. */
function rawStatus(base: string, path: string, authorization: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { headers: { authorization } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
