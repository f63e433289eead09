import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { McpExchange } from '../src/traffic/mcp-exchange';
import { McpTraffic } from '../src/traffic/mcp-traffic';
import { RateLimitStats } from '../src/ratelimit/rate-limit-stats';
import { entraEnv, GUEST_TENANT, HOME_TENANT, LocalEntraIssuer } from './support/entra-issuer';
import { startTestGateway, type TestGateway } from './support/gateway';

/** The per-address limit runs before the token check, so floods of bad tokens never reach JWKS. */
describe('per-IP rate limit before the token check (embedded, no Redis)', () => {
  const tenant = randomUUID();
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  const seen: McpExchange[] = [];

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    gw = await startTestGateway('embedded', {
      ...entraEnv(issuer, { AZURE_ALLOWED_TENANTS: `${HOME_TENANT},${GUEST_TENANT},${tenant}` }),
      RATE_LIMIT_IP: '3/1d',
    });
    gw.gateway.app.get(McpTraffic).onRecord((exchange) => seen.push(exchange));
  });

  afterAll(async () => {
    await gw?.close();
    await issuer?.stop();
  });

  it('refuses the address past its budget with 429 before any token is checked', async () => {
    for (const bearer of ['garbage', 'a.b.c', `${'x'.repeat(5000)}`]) {
      const res = await request(gw.url).post('/mcp').set('authorization', `Bearer ${bearer}`).send({});
      expect(res.status).toBe(401);
    }
    const refused = await request(gw.url).post('/mcp').set('authorization', 'Bearer garbage').send({});
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(refused.headers['ratelimit-policy']).toBe('"ip";q=3;w=86400');
    expect(refused.headers.ratelimit).toMatch(/^"ip";r=0;t=[1-9]\d*$/);
    expect(refused.headers['www-authenticate']).toBeUndefined();
    expect(refused.body).toMatchObject({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32029, data: { retryAfter: Number(refused.headers['retry-after']), policy: 'ip' } },
    });

    // A valid token of a tenant never seen is refused as well, and its keys are never fetched.
    const valid = await issuer.token({ tid: tenant, oid: randomUUID(), roles: [] }, { tid: tenant });
    const alsoRefused = await request(gw.url).post('/mcp/some-server').set('authorization', `Bearer ${valid}`).send({});
    expect(alsoRefused.status).toBe(429);
    expect(issuer.jwksFetches(tenant)).toBe(0);

    // The REST bridge answers problem+json; requests without a token are counted too.
    const bridge = await request(gw.url).post('/mcp/some-server/tools/echo').send({});
    expect(bridge.status).toBe(429);
    expect(bridge.headers['content-type']).toContain('application/problem+json');
    expect(bridge.body).toMatchObject({ status: 429, code: 'rate_limited' });

    expect(seen.filter((exchange) => exchange.decision === 'rate_limited')).toEqual([
      expect.objectContaining({ method: 'http', rule: 'ratelimit:ip', outcome: 'refused', surface: 'aggregate' }),
      expect.objectContaining({ method: 'http', surface: 'server' }),
      expect.objectContaining({ method: 'http', surface: 'rest' }),
    ]);
    expect(seen.some((exchange) => exchange.decision === 'rate_limited' && exchange.principal)).toBe(false);
    expect(gw.gateway.app.get(RateLimitStats).snapshot().decisions).toEqual(
      expect.arrayContaining([
        { policy: 'ip', outcome: 'allowed', source: 'ip', count: 3 },
        { policy: 'ip', outcome: 'refused', source: 'ip', count: 3 },
      ]),
    );
  });

  it('leaves the rest of the gateway alone', async () => {
    await request(gw.url).get('/api/v1/servers').expect(200);
    await request(gw.url).get('/health/live').expect(200);
  });
});

/** Behind a load balancer every client comes from its address: TRUST_PROXY makes the limit count the real ones. */
describe('per-IP rate limit behind trusted proxies (embedded, no Redis)', () => {
  const refusedAfterTwo = async (gw: TestGateway, forwardedFor: string): Promise<number[]> => {
    const statuses: number[] = [];
    for (let n = 0; n < 3; n++) {
      const res = await request(gw.url).post('/mcp').set('x-forwarded-for', forwardedFor).send({});
      statuses.push(res.status);
    }
    return statuses;
  };

  it('counts each forwarded client on its own when the proxy (here: loopback) is trusted', async () => {
    const gw = await startTestGateway('embedded', { AUTH_MODE: 'dev', RATE_LIMIT_IP: '2/1d', TRUST_PROXY: 'loopback' });
    try {
      expect(await refusedAfterTwo(gw, '198.51.100.1')).toEqual([401, 401, 429]);
      // Another client behind the same proxy has its own budget; a spoofed hop in front changes nothing.
      expect(await refusedAfterTwo(gw, '203.0.113.9, 198.51.100.2')).toEqual([401, 401, 429]);
      expect(await refusedAfterTwo(gw, '198.51.100.1')).toEqual([429, 429, 429]);
    } finally {
      await gw.close();
    }
  });

  it('counts a client whose proxy forwards its address with a port (Azure Application Gateway) under the address alone', async () => {
    const gw = await startTestGateway('embedded', { AUTH_MODE: 'dev', RATE_LIMIT_IP: '2/1d', TRUST_PROXY: '1' });
    try {
      const statuses: number[] = [];
      // Each request from a new connection, so from a new source port.
      for (const port of [50001, 50002, 50003]) {
        const res = await request(gw.url).post('/mcp').set('x-forwarded-for', `198.51.100.7:${port}`).send({});
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 429]);
      // The same address forwarded without a port shares that budget; IPv6 in brackets counts per /64 as without.
      expect(await refusedAfterTwo(gw, '198.51.100.7')).toEqual([429, 429, 429]);
      expect(
        (await request(gw.url).post('/mcp').set('x-forwarded-for', '[2001:db8:1:2::7]:50004').send({})).status,
      ).toBe(401);
      expect(
        (await request(gw.url).post('/mcp').set('x-forwarded-for', '[2001:db8:1:2::8]:50005').send({})).status,
      ).toBe(401);
      expect((await request(gw.url).post('/mcp').set('x-forwarded-for', '2001:db8:1:2::9').send({})).status).toBe(429);
    } finally {
      await gw.close();
    }
  });

  it('ignores X-Forwarded-For from a peer nobody said to trust', async () => {
    const gw = await startTestGateway('embedded', { AUTH_MODE: 'dev', RATE_LIMIT_IP: '2/1d' });
    try {
      expect(await refusedAfterTwo(gw, '198.51.100.1')).toEqual([401, 401, 429]);
      expect(await refusedAfterTwo(gw, '198.51.100.2')).toEqual([429, 429, 429]);
    } finally {
      await gw.close();
    }
  });
});
