import { randomUUID } from 'node:crypto';
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

/** One registration of an upstream behind the gateway; an upstream may stand in several, under other slugs. */
export interface UpstreamRegistration<U extends RunningUpstream> {
  upstream: U;
  /** The slug as given: unique to the test (its name is `com.example.test/{slug}`). */
  slug: string;
  /** More registration fields: `allowedRoles`, `timeouts`, `toolRules`, ... */
  registration?: Record<string, unknown>;
}

/** A registration made: its upstream, slug and id. */
export interface RegisteredServer<U extends RunningUpstream> {
  upstream: U;
  slug: string;
  serverId: string;
}

/** An Entra-guarded gateway with several registrations of real upstreams behind it, in the order they were given. */
export interface GuardedUpstreams<U extends RunningUpstream> {
  issuer: LocalEntraIssuer;
  gw: TestGateway;
  servers: RegisteredServer<U>[];
  /** Deletes the registrations and stops everything, each upstream once. */
  stop(): Promise<void>;
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
  const slug = `${options.slug}-${randomUUID().slice(0, 8)}`;
  const { issuer, gw, servers, stop } = await guardUpstreams(
    [{ upstream, slug, registration: options.registration }],
    options.env,
  );
  const [server] = servers;
  if (!server) throw new Error('guardUpstreams made no registration');
  return { issuer, upstream, gw, slug, serverId: server.serverId, stop };
}

/**
 * Puts a gateway (and a local Entra issuer) in front of upstreams already running, with `env` added to the gateway's
 * environment, and makes the registrations; the stop it returns, or its own failure, stops the upstreams too.
 */
export async function guardUpstreams<U extends RunningUpstream>(
  registrations: readonly UpstreamRegistration<U>[],
  env: Record<string, string> = {},
): Promise<GuardedUpstreams<U>> {
  const servers: RegisteredServer<U>[] = [];
  let issuer: LocalEntraIssuer | undefined;
  let gw: TestGateway | undefined;
  const stop = async (): Promise<void> => {
    if (gw) {
      for (const { serverId } of servers) await request(gw.url).delete(`/api/v1/servers/${serverId}`);
      await gw.close();
    }
    for (const upstream of new Set(registrations.map((entry) => entry.upstream))) await upstream.stop();
    await issuer?.stop();
  };
  try {
    issuer = await LocalEntraIssuer.start();
    gw = await startTestGateway('services', {
      ...entraEnv(issuer),
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
      ...env,
    });
    for (const { upstream, slug, registration } of registrations) {
      const created = await request(gw.url)
        .post('/api/v1/servers')
        .send({ name: `com.example.test/${slug}`, slug, url: upstream.url, ...registration })
        .expect(201);
      servers.push({ upstream, slug, serverId: created.body.id as string });
    }
    return { issuer, gw, servers, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}
