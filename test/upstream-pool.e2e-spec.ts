import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { UpstreamPool } from '../src/mcp/upstream-pool';
import { eventually } from './support/eventually';
import { startGuardedUpstream } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { GREET_TOOLS } from './support/upstream';

describe('the aggregate endpoint’s upstream sessions', () => {
  it('are ended upstream when the gateway shuts down (DELETE), not left to expire', async () => {
    const role = `Pool.${randomUUID().slice(0, 8)}`;
    const { issuer, upstream, gw, slug, serverId, stop } = await startGuardedUpstream({
      slug: 'pool',
      role,
      tools: GREET_TOOLS,
    });
    try {
      const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles: [role] }));
      try {
        await eventually(async () => {
          const result = await client.callTool({ name: `${slug}__echoHai`, arguments: { userName: 'Ada' } });
          expect(result.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
        });
      } finally {
        await client.close();
      }
      const pool = gw.gateway.app.get(UpstreamPool);
      expect(pool.size).toBe(1);
      // Discovery keeps a session of its own open (it listens for list_changed); the pool's is one more.
      const before = upstream.openSessions;
      await pool.onModuleDestroy();
      expect(pool.size).toBe(0);
      expect(upstream.openSessions).toBe(before - 1);
      await request(gw.url).get(`/api/v1/servers/${serverId}`).expect(200);
    } finally {
      await stop();
    }
  });

  it('keep one upstream connection alive from call to call, through /mcp and the REST bridge', async () => {
    const role = `Keep.${randomUUID().slice(0, 8)}`;
    const { issuer, upstream, gw, slug, stop } = await startGuardedUpstream({ slug: 'keep', role, tools: GREET_TOOLS });
    const token = await issuer.token({ roles: [role] });
    try {
      const { client } = await connectClient(`${gw.url}/mcp`, token);
      try {
        await eventually(async () => {
          const result = await client.callTool({ name: `${slug}__echoHai`, arguments: { userName: 'Ada' } });
          expect(result.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
        });
        const before = upstream.connectionsAccepted;
        for (let call = 0; call < 10; call++) {
          const result = await client.callTool({ name: `${slug}__echoHai`, arguments: { userName: `A${call}` } });
          expect(result.content).toEqual([{ type: 'text', text: `Hello, A${call}!` }]);
          const rest = await request(gw.url)
            .post(`/mcp/${slug}/tools/echoHai`)
            .set('authorization', `Bearer ${token}`)
            .send({ userName: `R${call}` })
            .expect(200);
          expect(rest.body.content).toEqual([{ type: 'text', text: `Hello, R${call}!` }]);
        }
        // Each answer's stream is read to its end, so its connection goes back to the pool: a few connections for
        // 20 calls (one more whenever a call starts before the last stream's end was read), not one per call.
        expect(upstream.connectionsAccepted - before).toBeLessThanOrEqual(4);
      } finally {
        await client.close();
      }
    } finally {
      await stop();
    }
  });
});
