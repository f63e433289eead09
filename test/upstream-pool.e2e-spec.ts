import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { UpstreamPool } from '../src/mcp/upstream-pool';
import { entraEnv, LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import { startTestGateway } from './support/gateway';
import { connectClient } from './support/mcp-client';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

describe('the aggregate endpoint’s upstream sessions', () => {
  it('are ended upstream when the gateway shuts down (DELETE), not left to expire', async () => {
    const issuer = await LocalEntraIssuer.start();
    const upstream = await TestUpstream.start('greet', GREET_TOOLS);
    const gw = await startTestGateway('services', { ...entraEnv(issuer), UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    const slug = `pool-${randomUUID().slice(0, 8)}`;
    const role = `Pool.${randomUUID().slice(0, 8)}`;
    try {
      const created = await request(gw.url)
        .post('/api/v1/servers')
        .send({ name: `com.example.pool/${slug}`, slug, url: upstream.url, allowedRoles: [role] })
        .expect(201);
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
      await request(gw.url)
        .get(`/api/v1/servers/${created.body.id as string}`)
        .expect(200);
    } finally {
      await gw.close();
      await upstream.stop();
      await issuer.stop();
    }
  });

  it('keep one upstream connection alive from call to call, through /mcp and the REST bridge', async () => {
    const issuer = await LocalEntraIssuer.start();
    const upstream = await TestUpstream.start('greet', GREET_TOOLS);
    const gw = await startTestGateway('services', { ...entraEnv(issuer), UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    const slug = `keep-${randomUUID().slice(0, 8)}`;
    const role = `Keep.${randomUUID().slice(0, 8)}`;
    const token = await issuer.token({ roles: [role] });
    try {
      await request(gw.url)
        .post('/api/v1/servers')
        .send({ name: `com.example.keep/${slug}`, slug, url: upstream.url, allowedRoles: [role] })
        .expect(201);
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
      await gw.close();
      await upstream.stop();
      await issuer.stop();
    }
  });
});
