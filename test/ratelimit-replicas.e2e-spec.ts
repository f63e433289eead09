import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { entraEnv, GUEST_TENANT, HOME_TENANT, LocalEntraIssuer } from './support/entra-issuer';
import { type Replica, startReplicas, stopReplicas } from './support/gateway-replicas';
import { POSTGRES_URL, REDIS_URL } from './support/services';

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ratelimit-replicas', version: '1' } },
};

/** Two `mcp-gateway serve` processes (built CLI: `npm run build` first) spending from one Redis budget. */
describe('rate limits shared by two gateway processes', () => {
  const tenant = randomUUID();
  let issuer: LocalEntraIssuer;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    replicas = await startReplicas(2, {
      ...entraEnv(issuer, { AZURE_ALLOWED_TENANTS: `${HOME_TENANT},${GUEST_TENANT},${tenant}` }),
      DATABASE_URL: POSTGRES_URL,
      REDIS_URL,
      MCP_STATELESS: 'true',
      HEALTH_PROBE_INTERVAL_MS: '0',
      DISCOVERY_INTERVAL_MS: '0',
      RATE_LIMIT_PRINCIPAL: '5/1d',
      RATE_LIMIT_IP: 'off',
      // This test is about sharing, not about a slow Redis: a loaded test machine must not trip the insurance limiter.
      RATE_LIMIT_REDIS_TIMEOUT_MS: '2000',
    });
  }, 120_000);

  afterAll(async () => {
    if (replicas.length) expect(await stopReplicas(replicas)).toEqual([0, 0]);
    await issuer?.stop();
  });

  async function token(): Promise<string> {
    return issuer.token({ tid: tenant, oid: randomUUID(), roles: [] }, { tid: tenant });
  }

  function initialize(replica: Replica, bearer: string) {
    return request(replica.url)
      .post('/mcp')
      .set('authorization', `Bearer ${bearer}`)
      .set('accept', 'application/json, text/event-stream')
      .send(INITIALIZE);
  }

  it('continues one budget on the other replica: 3 on the first, then only 2 more on the second', async () => {
    const bearer = await token();
    const [a, b] = replicas as [Replica, Replica];
    for (let i = 0; i < 3; i++) expect((await initialize(a, bearer)).status).toBe(200);
    const second = await initialize(b, bearer);
    expect(second.status).toBe(200);
    expect(second.headers.ratelimit).toMatch(/^"principal";r=1;/);
    expect((await initialize(b, bearer)).status).toBe(200);
    const refused = await initialize(b, bearer);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect((await initialize(a, bearer)).status).toBe(429);
  });

  it('allows exactly the budget when both replicas are asked at once', async () => {
    const bearer = await token();
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, index) => initialize(replicas[index % 2]!, bearer)),
    );
    const odd = answers.filter((answer) => answer.status !== 200 && answer.status !== 429);
    expect(odd.map((answer) => [answer.status, answer.text])).toEqual([]);
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([...Array<number>(5).fill(200), ...Array<number>(11).fill(429)]);
  });
});
