import request from 'supertest';
import { entraEnv, LocalEntraIssuer } from './entra-issuer';
import { startTestGateway, type TestGateway } from './gateway';
import { type FixtureTool, TestUpstream } from './upstream';

/** An Entra-guarded gateway on this machine's PostgreSQL and Redis, with one real upstream registered behind it. */
export interface GuardedUpstream {
  issuer: LocalEntraIssuer;
  upstream: TestUpstream;
  gw: TestGateway;
  slug: string;
  serverId: string;
  /** Deletes the registration and stops everything. */
  stop(): Promise<void>;
}

export interface GuardedUpstreamOptions {
  /** The slug is `{slug}-{random}`. */
  slug: string;
  /** The app role that reaches the server (its `allowedRoles`). */
  role: string;
  tools: FixtureTool[];
  /** More registration fields: `toolRules`, `auth`, ... */
  registration?: Record<string, unknown>;
  /** More gateway environment. */
  env?: Record<string, string>;
}

export async function startGuardedUpstream(options: GuardedUpstreamOptions): Promise<GuardedUpstream> {
  const issuer = await LocalEntraIssuer.start();
  const upstream = await TestUpstream.start('greet', options.tools);
  const gw = await startTestGateway('services', {
    ...entraEnv(issuer),
    UPSTREAM_ALLOWED_HOSTS: 'loopback',
    ...options.env,
  });
  const slug = `${options.slug}-${Math.random().toString(16).slice(2, 10)}`;
  const created = await request(gw.url)
    .post('/api/v1/servers')
    .send({
      name: `com.example.test/${slug}`,
      slug,
      url: upstream.url,
      allowedRoles: [options.role],
      ...options.registration,
    })
    .expect(201);
  const serverId = created.body.id as string;
  return {
    issuer,
    upstream,
    gw,
    slug,
    serverId,
    stop: async () => {
      await request(gw.url).delete(`/api/v1/servers/${serverId}`);
      await gw.close();
      await upstream.stop();
      await issuer.stop();
    },
  };
}
