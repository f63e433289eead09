import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { entraError, type LocalEntraIssuer } from './support/entra-issuer';
import type { TestGateway } from './support/gateway';
import { type GuardedUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { GREET_TOOLS } from './support/upstream';

/** What Entra ID asks for when conditional access needs more (e.g. MFA) for the upstream's token. */
const CLAIMS = JSON.stringify({ access_token: { acrs: { essential: true, value: 'c1' } } });

describe('conditional access on an on-behalf-of upstream (claims challenge)', () => {
  let deployment: GuardedUpstream;
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  let slug: string;
  const role = `Obo.${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    deployment = await startGuardedUpstream({
      slug: 'obo',
      role,
      tools: GREET_TOOLS,
      registration: { auth: { type: 'entra-obo', scope: 'api://upstream-api/Files.Read' } },
    });
    ({ issuer, gw, slug } = deployment);
  });

  afterAll(async () => {
    await deployment.stop();
  });

  /** An MCP initialize to the on-behalf-of server with a token of the role that reaches it. */
  async function initialize(): Promise<request.Response> {
    return request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${await issuer.token({ roles: [role] })}`)
      .set('accept', 'application/json, text/event-stream')
      .send({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
  }

  it('passes the challenge to the MCP client as 401 insufficient_claims, with the claims base64-encoded', async () => {
    issuer.tokenReply = () => {
      const reply = entraError(
        'interaction_required',
        50076,
        'Due to a configuration change made by your administrator, you must use multi-factor authentication.',
      );
      return { ...reply, body: { ...reply.body, claims: CLAIMS } };
    };
    const res = await initialize();
    expect(res.status).toBe(401);
    const challenge = res.headers['www-authenticate'] as string;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_claims"');
    expect(challenge).toContain(`claims="${Buffer.from(CLAIMS).toString('base64')}"`);
    expect(challenge).toContain(
      `resource_metadata="https://gateway.test/.well-known/oauth-protected-resource/mcp/${slug}"`,
    );
    expect(res.body).toMatchObject({ error: 'insufficient_claims' });
    expect(res.body.error_description).toContain('conditional access');
    expect(JSON.stringify(res.body)).not.toContain('obo-token');
  });

  it('keeps other Entra refusals a JSON-RPC error, not a challenge', async () => {
    issuer.tokenReply = () => entraError('invalid_client', 7000215, 'Invalid client secret provided.');
    const res = await initialize();
    expect(res.status).toBe(200);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.body.error.data).toMatchObject({ server: slug, kind: 'auth' });
  });
});
