import { checkResourceAllowed } from '@modelcontextprotocol/sdk/shared/auth-utils.js';
import request from 'supertest';
import { startProbeGateway } from './support/auth-gateway';
import { entraEnv, GATEWAY_CLIENT_ID, HOME_TENANT, LocalEntraIssuer } from './support/entra-issuer';
import { startTestGateway, type TestGateway } from './support/gateway';
import { insertServer, type StoredServer } from './support/servers-table';

const BASE = 'https://gateway.test';
const WELL_KNOWN = '/.well-known/oauth-protected-resource';

describe('OAuth protected resource metadata (RFC 9728)', () => {
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  let open: StoredServer;
  let readersOnly: StoredServer;
  let disabled: StoredServer;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    gw = await startProbeGateway(entraEnv(issuer, { AUTH_REQUIRED_SCOPES: 'access_as_user,Mcp.Tools' }));
    open = await insertServer(gw.gateway.app, { allowedRoles: ['Gateway.User'] });
    readersOnly = await insertServer(gw.gateway.app, { allowedRoles: ['Gateway.Reader'] });
    disabled = await insertServer(gw.gateway.app, { allowedRoles: ['Gateway.User'], status: 'disabled' });
  });

  afterAll(async () => {
    await gw?.close();
    await issuer?.stop();
  });

  const document = (resource: string) => ({
    resource,
    authorization_servers: [`${issuer.url}/${HOME_TENANT}/v2.0`],
    scopes_supported: [`api://${GATEWAY_CLIENT_ID}/access_as_user`, `api://${GATEWAY_CLIENT_ID}/Mcp.Tools`],
    bearer_methods_supported: ['header'],
    resource_name: expect.any(String),
  });

  it.each([
    [`${WELL_KNOWN}/mcp`, `${BASE}/mcp`],
    // The root names the identifier its URL was made from, the origin (RFC 9728 §3.3); MCP clients fall back to it
    // for any endpoint of the gateway, which lies under it.
    [WELL_KNOWN, BASE],
    [`${WELL_KNOWN}/`, BASE],
  ])('serves %s for %s, open to any origin', async (path, resource) => {
    const res = await request(gw.url).get(path).set('origin', 'https://inspector.example').expect(200);
    expect(res.body).toEqual(document(resource));
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    for (const endpoint of [`${BASE}/mcp`, `${BASE}/mcp/up`]) {
      expect(checkResourceAllowed({ requestedResource: endpoint, configuredResource: res.body.resource })).toBe(true);
    }
  });

  it('serves one document per registered server', async () => {
    const res = await request(gw.url).get(`${WELL_KNOWN}/mcp/${open.slug}`).expect(200);
    expect(res.body).toEqual(document(`${BASE}/mcp/${open.slug}`));
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('answers every slug-shaped path alike, with or without a token: no reader learns which servers exist', async () => {
    const user = await issuer.token({ roles: ['Gateway.User'] });
    const admin = await issuer.token({ roles: ['Gateway.Admin'] });
    // Forged: a kid the tenant never published, no valid signature.
    const forged = await issuer.token({ roles: ['Gateway.User'] }, { key: await issuer.unpublishedKey() });
    const fetches = issuer.jwksFetches(HOME_TENANT);
    for (const slug of [open.slug, readersOnly.slug, disabled.slug, 'no-such-server']) {
      for (const authorization of [
        undefined,
        `Bearer ${user}`,
        `Bearer ${admin}`,
        `Bearer ${forged}`,
        'Bearer x.y.z',
      ]) {
        const get = request(gw.url).get(`${WELL_KNOWN}/mcp/${slug}`);
        const res = await (authorization ? get.set('authorization', authorization) : get);
        expect({ slug, authorization, status: res.status }).toEqual({ slug, authorization, status: 200 });
        expect(res.body).toEqual(document(`${BASE}/mcp/${slug}`));
        expect(res.body.resource_name).toBe(`mcp-gateway: ${slug}`);
        expect(res.headers.vary ?? '').not.toMatch(/authorization/i);
      }
    }
    // Reading metadata never looks at the token: no key is fetched for it.
    expect(issuer.jwksFetches(HOME_TENANT)).toBe(fetches);
  });

  it('answers 404 for paths that name no resource', async () => {
    for (const path of [
      `${WELL_KNOWN}/mcp/${open.slug}/deeper`,
      `${WELL_KNOWN}/api/v1`,
      `${WELL_KNOWN}/mcp/Not_A_Slug`,
      `${WELL_KNOWN}/mcp/`,
    ]) {
      const res = await request(gw.url).get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['access-control-allow-origin']).toBe('*');
    }
  });

  it('answers a CORS preflight', async () => {
    const res = await request(gw.url)
      .options(`${WELL_KNOWN}/mcp`)
      .set('origin', 'https://inspector.example')
      .set('access-control-request-method', 'GET')
      .set('access-control-request-headers', 'mcp-protocol-version')
      .expect(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-methods']).toContain('GET');
    expect(res.headers['access-control-allow-headers']).toBe('mcp-protocol-version');
  });

  it('is where every 401 points, with the scopes to request', async () => {
    const aggregate = await request(gw.url).post('/mcp').expect(401);
    expect(aggregate.headers['www-authenticate']).toBe(
      `Bearer resource_metadata="${BASE}${WELL_KNOWN}/mcp", scope="api://${GATEWAY_CLIENT_ID}/access_as_user api://${GATEWAY_CLIENT_ID}/Mcp.Tools"`,
    );
    const one = await request(gw.url).post(`/mcp/${open.slug}`).expect(401);
    expect(one.headers['www-authenticate']).toContain(`resource_metadata="${BASE}${WELL_KNOWN}/mcp/${open.slug}"`);
  });

  it('answers 403 insufficient_scope naming every required scope when a delegated token lacks one', async () => {
    const res = await request(gw.url)
      .post('/mcp')
      .set('authorization', `Bearer ${await issuer.token({ scp: 'access_as_user' })}`)
      .expect(403);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer error="insufficient_scope", error_description="the token lacks a scope this gateway requires", ` +
        `resource_metadata="${BASE}${WELL_KNOWN}/mcp", scope="api://${GATEWAY_CLIENT_ID}/access_as_user api://${GATEWAY_CLIENT_ID}/Mcp.Tools"`,
    );
    await request(gw.url)
      .get('/mcp/no-such-thing/deeper')
      .set('authorization', `Bearer ${await issuer.token({ scp: 'Mcp.Tools access_as_user' })}`)
      .expect(404);
  });

  it('lists fully qualified scopes given as such', async () => {
    const custom = await startTestGateway('services', {
      ...entraEnv(issuer),
      AUTH_REQUIRED_SCOPES: 'https://gateway.contoso.com/access_as_user',
    });
    try {
      const res = await request(custom.url).get(`${WELL_KNOWN}/mcp`).expect(200);
      expect(res.body.scopes_supported).toEqual(['https://gateway.contoso.com/access_as_user']);
      await request(custom.url)
        .get('/mcp/no-such-thing/deeper')
        .set('authorization', `Bearer ${await issuer.token({ scp: 'access_as_user' })}`)
        .expect(404);
    } finally {
      await custom.close();
    }
  });
});

describe('protected resource metadata behind a proxy that serves the gateway under a path', () => {
  const PUBLIC = 'https://gw.example.com/base';
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    gw = await startTestGateway('services', { ...entraEnv(issuer), PUBLIC_URL: `${PUBLIC}/` });
  });

  afterAll(async () => {
    await gw?.close();
    await issuer?.stop();
  });

  /** What the gateway receives for `url`: the proxy routes the well-known path to it as it is. */
  const pathOf = (url: string): string => new URL(url).pathname;

  it('serves the metadata every 401 points at, naming the resource its URL was made from (RFC 9728 §3.1, §3.3)', async () => {
    for (const [endpoint, resource] of [
      ['/mcp', `${PUBLIC}/mcp`],
      ['/mcp/up', `${PUBLIC}/mcp/up`],
      ['/mcp/no-such-server/tools', `${PUBLIC}/mcp/no-such-server`],
    ] as const) {
      // The proxy strips /base before the gateway: the endpoint is what the gateway sees of $PUBLIC_URL/mcp/….
      const refused = await request(gw.url).post(endpoint).expect(401);
      const metadataUrl = /resource_metadata="([^"]+)"/.exec(refused.headers['www-authenticate'] ?? '')?.[1] ?? '';
      expect(metadataUrl).toBe(`https://gw.example.com${WELL_KNOWN}${new URL(resource).pathname}`);
      const res = await request(gw.url).get(pathOf(metadataUrl));
      expect({ endpoint, status: res.status, resource: res.body.resource }).toEqual({
        endpoint,
        status: 200,
        resource,
      });
    }
  });

  it('serves the same documents to a proxy that strips the path there too, and nothing for look-alike paths', async () => {
    for (const [path, resource] of [
      [`${WELL_KNOWN}/base`, PUBLIC],
      [WELL_KNOWN, PUBLIC],
      [`${WELL_KNOWN}/mcp/up`, `${PUBLIC}/mcp/up`],
      [`${WELL_KNOWN}/mcp`, `${PUBLIC}/mcp`],
    ] as const) {
      const res = await request(gw.url).get(path);
      expect({ path, status: res.status, resource: res.body.resource }).toEqual({ path, status: 200, resource });
    }
    for (const path of [
      `${WELL_KNOWN}/basement/mcp/up`,
      `${WELL_KNOWN}/base/base/mcp/up`,
      `${WELL_KNOWN}/Base/mcp/up`,
      `${WELL_KNOWN}/base/mcp/up/deeper`,
      `${WELL_KNOWN}/base/api/v1`,
    ]) {
      const res = await request(gw.url).get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
  });
});

describe('AUTH_MODE=entra without a tenant or client', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway('services', { AUTH_MODE: 'entra' });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('fails closed on MCP_PREFIX with 503 and a clear message', async () => {
    for (const path of ['/mcp', '/mcp/anything']) {
      const res = await request(gw.url).post(path).set('authorization', 'Bearer a.b.c');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        error: 'temporarily_unavailable',
        error_description: expect.stringContaining('AZURE_TENANT_ID and AZURE_CLIENT_ID are required'),
      });
    }
    const metadata = await request(gw.url).get(`${WELL_KNOWN}/mcp`);
    expect(metadata.status).toBe(503);
    expect(metadata.body.code).toBe('service_unavailable');
  });

  it('keeps the API and health working', async () => {
    await request(gw.url).get('/health/ready').expect(200);
    await request(gw.url).get('/api/v1').expect(200);
    const explain = await request(gw.url).get('/api/v1/authz/explain?server=no-such-server');
    expect(explain.status).toBe(404);
  });
});
