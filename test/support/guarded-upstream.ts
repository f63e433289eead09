import request from 'supertest';
import { entraEnv, LocalEntraIssuer } from './entra-issuer';
import { startTestGateway, type TestGateway } from './gateway';
import { type FixtureTool, TestUpstream } from './upstream';

/** An upstream a test runs: where it listens, and how it stops. */
interface RunningUpstream {
  readonly url: string;
  stop(): Promise<void>;
}

/** An Entra-guarded gateway on this machine's PostgreSQL and Redis, with one real upstream registered behind it. */
export interface GuardedUpstream<U extends RunningUpstream = TestUpstream> {
  issuer: LocalEntraIssuer;
  upstream: U;
  gw: TestGateway;
  slug: string;
  serverId: string;
  /** Deletes the registration and stops everything. */
  stop(): Promise<void>;
}

export interface GuardOptions {
  /** The slug is `{slug}-{random}`. */
  slug: string;
  /** More registration fields: `allowedRoles`, `toolRules`, `auth`, ... */
  registration?: Record<string, unknown>;
  /** More gateway environment. */
  env?: Record<string, string>;
}

export interface GuardedUpstreamOptions extends GuardOptions {
  /** The app role that reaches the server (its `allowedRoles`). */
  role: string;
  tools: FixtureTool[];
}

/** A TestUpstream with `tools`, behind a gateway, reached by callers holding `role`. */
export async function startGuardedUpstream(options: GuardedUpstreamOptions): Promise<GuardedUpstream> {
  const upstream = await TestUpstream.start('greet', options.tools);
  return guardUpstream(upstream, {
    ...options,
    registration: { allowedRoles: [options.role], ...options.registration },
  });
}

/** Puts a gateway (and a local Entra issuer) in front of an upstream already running, registered under a new slug. */
export async function guardUpstream<U extends RunningUpstream>(
  upstream: U,
  options: GuardOptions,
): Promise<GuardedUpstream<U>> {
  const issuer = await LocalEntraIssuer.start();
  const gw = await startTestGateway('services', {
    ...entraEnv(issuer),
    UPSTREAM_ALLOWED_HOSTS: 'loopback',
    ...options.env,
  });
  const slug = `${options.slug}-${Math.random().toString(16).slice(2, 10)}`;
  const created = await request(gw.url)
    .post('/api/v1/servers')
    .send({ name: `com.example.test/${slug}`, slug, url: upstream.url, ...options.registration })
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
