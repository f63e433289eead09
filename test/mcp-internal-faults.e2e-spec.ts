import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import request from 'supertest';
import { waitUntil } from './support/eventually';
import { type GuardedUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { REDIS_URL } from './support/services';
import { GREET_TOOLS } from './support/upstream';

const initialize = (id: number) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'faults-test', version: '1.0.0' } },
});

/**
 * A fault of the gateway's own met while relaying to an upstream, which the relay catches with the upstream's
 * failures and cannot classify. The fault is a real one: the gateway's Redis user may not run SET (a Redis ACL), so
 * the session of an initialize the upstream answered cannot be stored, and Redis's refusal reaches the relay.
 */
describe('an unclassified failure relaying to an upstream', () => {
  const user = `faults-${randomUUID()}`;
  const password = `pw-${randomUUID()}`;
  const admin = new Redis(REDIS_URL, { lazyConnect: true });
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;

  beforeAll(async () => {
    await admin.connect();
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all', '-set');
    const redisUrl = new URL(REDIS_URL);
    redisUrl.username = user;
    redisUrl.password = password;
    deployment = await startGuardedUpstream({
      slug: 'faults',
      role,
      tools: GREET_TOOLS,
      env: { REDIS_URL: redisUrl.toString() },
    });
  });

  afterAll(async () => {
    await deployment?.stop();
    await admin.call('ACL', 'DELUSER', user);
    await admin.quit();
  });

  it('is answered -32603 on /mcp/{slug} with the error id of the one line logging it, and nothing of its text', async () => {
    const { gw, issuer, slug } = deployment;
    const requestId = `faults-${randomUUID()}`;
    const answer = await request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${await issuer.token({ roles: [role] })}`)
      .set('accept', 'application/json, text/event-stream')
      .set('x-request-id', requestId)
      .send(initialize(3));

    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.text) as { error: { data?: { errorId?: string } } };
    expect(body).toEqual({
      jsonrpc: '2.0',
      id: 3,
      error: {
        code: -32603,
        message: 'Internal error',
        data: { server: slug, kind: 'other', errorId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
      },
    });
    expect(answer.text).not.toContain('NOPERM');
    const errorId = body.error.data?.errorId;
    await waitUntil(() => gw.logs.lines.some((line) => line.errorId === errorId), 'the error line');
    // Logged once, as an internal fault: the error, its id and the request's, and no 'upstream request failed' too.
    const lines = gw.logs.lines.filter(
      (line) => (line.errorId === errorId || line.reqId === requestId) && line.req === undefined,
    );
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        errorId,
        reqId: requestId,
        server: slug,
        err: expect.objectContaining({ message: expect.stringContaining('NOPERM') }),
      }),
    ]);
    expect(gw.logs.lines.filter((line) => line.msg === 'upstream request failed')).toEqual([]);
  });
});
