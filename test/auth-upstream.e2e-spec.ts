import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { UpstreamCaller } from '../src/auth/principal';
import { TokenVerifier } from '../src/auth/token-verifier';
import { UpstreamTokenProvider } from '../src/auth/upstream-token-provider';
import { loadConfig } from '../src/config/config';
import { KEY_VALUE_STORE, type KeyValueStore } from '../src/redis/key-value-store';
import { MemoryStore } from '../src/redis/memory-store';
import type { UpstreamAuth, UpstreamTarget } from '../src/registry/server.schema';
import { UpstreamConnector } from '../src/upstream/upstream-connector';
import { UpstreamError } from '../src/upstream/upstream-error';
import {
  defaultTokenReply,
  entraEnv,
  entraError,
  GATEWAY_CLIENT_ID,
  GATEWAY_SECRET,
  GUEST_TENANT,
  HOME_TENANT,
  LocalEntraIssuer,
} from './support/entra-issuer';
import { startTestGateway, type TestGateway } from './support/gateway';
import { RecordingProxy } from './support/recording-proxy';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

const OBO_SCOPE = 'api://upstream-api/Files.Read';
const APP_SCOPE = 'api://upstream-api/.default';

function target(url: string, auth: UpstreamAuth, slug = 'greet'): UpstreamTarget {
  return { id: 'id', slug, url, transport: 'streamable-http', auth, timeouts: {} };
}

async function failureOf(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

describe('upstream identity (msal-node against a local Entra authority)', () => {
  let issuer: LocalEntraIssuer;
  let upstream: TestUpstream;
  let proxy: RecordingProxy;
  let gw: TestGateway;
  let connector: UpstreamConnector;
  let upstreamUrl: string;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
    proxy = await RecordingProxy.start(upstream.url);
    upstreamUrl = proxy.urlFor(upstream.url);
    gw = await startTestGateway('services', entraEnv(issuer, { UPSTREAM_ALLOWED_HOSTS: 'loopback' }));
    connector = gw.gateway.app.get(UpstreamConnector);
  });

  afterAll(async () => {
    await gw?.close();
    await proxy?.stop();
    await upstream?.stop();
    await issuer?.stop();
  });

  afterEach(() => {
    issuer.tokenReply = defaultTokenReply;
  });

  /** A caller as the MCP_PREFIX guard leaves it: verified by the gateway itself. */
  async function caller(claims: Record<string, unknown> = {}, tid = HOME_TENANT): Promise<UpstreamCaller> {
    const verified = await gw.gateway.app.get(TokenVerifier).verify(await issuer.token(claims, { tid }));
    return { principal: verified.principal, token: verified.token, expiresAt: verified.expiresAt };
  }

  const requestsSince = (count: number) => issuer.tokenRequests.slice(count);

  it('gets an on-behalf-of token with the caller’s token as the assertion, and never forwards the caller’s token', async () => {
    const user = await caller();
    const before = issuer.tokenRequests.length;
    const seen = proxy.requests.length;
    const session = await connector.connect(target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE }), {
      caller: user,
    });
    try {
      const result = await session.client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
      expect(result.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
    } finally {
      await session.close();
    }
    const [grant, ...others] = requestsSince(before);
    expect(others).toEqual([]);
    expect(grant?.tid).toBe(HOME_TENANT);
    expect(grant?.params).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      requested_token_use: 'on_behalf_of',
      assertion: user.token,
      client_id: GATEWAY_CLIENT_ID,
      client_secret: GATEWAY_SECRET,
    });
    expect(grant?.params.scope?.split(' ')).toContain(OBO_SCOPE);
    const sent = proxy.authorizations.slice(seen);
    expect(sent.length).toBeGreaterThan(0);
    expect(new Set(sent)).toEqual(new Set([`Bearer obo-token-${before + 1}`]));
    expect(JSON.stringify(proxy.requests)).not.toContain(user.token);
  });

  it('asks the caller’s own tenant for an on-behalf-of token, and keeps it in a partition of that tenant', async () => {
    const oboTarget = target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE });
    const guest = await caller({}, GUEST_TENANT);
    const home = await caller();
    const before = issuer.tokenRequests.length;
    const guests = await connector.headersFor(oboTarget, guest);
    const homes = await connector.headersFor(oboTarget, home);
    expect(requestsSince(before).map((grant) => [grant.tid, grant.params.assertion])).toEqual([
      [GUEST_TENANT, guest.token],
      [HOME_TENANT, home.token],
    ]);
    expect(guests).not.toEqual(homes);
    // Each served again from its own tenant's partition.
    expect(await connector.headersFor(oboTarget, guest)).toEqual(guests);
    expect(requestsSince(before)).toHaveLength(2);
    const store = gw.gateway.app.get<KeyValueStore>(KEY_VALUE_STORE);
    const hash = createHash('sha256').update(guest.token).digest('base64url');
    expect(await store.get(`mcp-gateway:msal:obo:${GUEST_TENANT}:${hash}`)).toMatch(/^v1\./);
  });

  it('serves a user’s later calls from the cache in Redis, encrypted, one partition per caller token', async () => {
    const user = await caller();
    const oboTarget = target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE });
    const before = issuer.tokenRequests.length;
    const first = await connector.headersFor(oboTarget, user);
    const second = await connector.headersFor(oboTarget, user);
    expect(second).toEqual(first);
    expect(requestsSince(before)).toHaveLength(1);

    const store = gw.gateway.app.get<KeyValueStore>(KEY_VALUE_STORE);
    expect(store.kind).toBe('redis');
    const partition = `mcp-gateway:msal:obo:${HOME_TENANT}:${createHash('sha256').update(user.token).digest('base64url')}`;
    const stored = await store.get(partition);
    expect(stored).toMatch(/^v1\./);
    expect(stored).not.toContain('obo-token');
    expect(stored).not.toContain(first.authorization!.slice(7));

    const someoneElse = await caller();
    const theirs = await connector.headersFor(oboTarget, someoneElse);
    expect(theirs).not.toEqual(first);
    expect(requestsSince(before)).toHaveLength(2);
  });

  it('shares that cache with another instance on the same Redis', async () => {
    const user = await caller();
    const oboTarget = target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE });
    const first = await connector.headersFor(oboTarget, user);
    const before = issuer.tokenRequests.length;
    const other = await startTestGateway('services', entraEnv(issuer, { UPSTREAM_ALLOWED_HOSTS: 'loopback' }));
    try {
      expect(await other.gateway.app.get(UpstreamConnector).headersFor(oboTarget, user)).toEqual(first);
      expect(requestsSince(before)).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it('asks Entra again before a cached token expires (msal renews within five minutes of expiry)', async () => {
    issuer.tokenReply = (request, count) => {
      const reply = defaultTokenReply(request, count);
      return { ...reply, body: { ...reply.body, expires_in: 240, ext_expires_in: 240 } };
    };
    const user = await caller();
    const oboTarget = target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE });
    const before = issuer.tokenRequests.length;
    const first = await connector.headersFor(oboTarget, user);
    const second = await connector.headersFor(oboTarget, user);
    expect(second).not.toEqual(first);
    expect(requestsSince(before)).toHaveLength(2);
    expect(requestsSince(before).every((r) => r.params.assertion === user.token)).toBe(true);
  });

  it('shares one token request among concurrent first calls of the same caller', async () => {
    const user = await caller();
    const oboTarget = target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE });
    const before = issuer.tokenRequests.length;
    const all = await Promise.all(
      Array.from({ length: 10 }, () => Promise.resolve(connector.headersFor(oboTarget, user))),
    );
    expect(new Set(all.map((headers) => headers.authorization)).size).toBe(1);
    expect(requestsSince(before)).toHaveLength(1);
  });

  it('gets a client-credentials token as the gateway itself, cached for every caller', async () => {
    const appTarget = target(upstreamUrl, { type: 'entra-client-credentials', scope: APP_SCOPE }, 'reports');
    const before = issuer.tokenRequests.length;
    const seen = proxy.requests.length;
    const session = await connector.connect(appTarget);
    await session.close();
    const [grant, ...others] = requestsSince(before);
    expect(others).toEqual([]);
    // The gateway's own token, from its home tenant.
    expect(grant?.tid).toBe(HOME_TENANT);
    expect(grant?.params).toMatchObject({
      grant_type: 'client_credentials',
      client_id: GATEWAY_CLIENT_ID,
      client_secret: GATEWAY_SECRET,
      scope: APP_SCOPE,
    });
    expect(grant?.params.assertion).toBeUndefined();
    expect(new Set(proxy.authorizations.slice(seen))).toEqual(new Set([`Bearer app-token-${before + 1}`]));
    await connector.headersFor(appTarget, await caller());
    await connector.headersFor(appTarget);
    expect(requestsSince(before)).toHaveLength(1);
  });

  it('refuses an app-only caller on an on-behalf-of server, asking Entra nothing', async () => {
    const app = await caller({ scp: undefined, roles: ['Gateway.Admin'], idtyp: 'app' });
    const before = issuer.tokenRequests.length;
    const failure = await failureOf(
      connector.connect(target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE }), { caller: app }),
    );
    expect(failure.kind).toBe('auth');
    expect(failure.message).toBe('server greet acts on behalf of a signed-in user; an app-only caller cannot use it');
    const anonymous = await failureOf(connector.connect(target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE })));
    expect(anonymous.message).toMatch(/needs a caller/);
    expect(requestsSince(before)).toHaveLength(0);
  });

  it('turns a consent error into a message the MCP client can act on', async () => {
    issuer.tokenReply = () =>
      entraError(
        'invalid_grant',
        65001,
        "The user or administrator has not consented to use the application with ID 'x'.",
        'consent_required',
      );
    const failure = await failureOf(
      Promise.resolve(
        connector.headersFor(target(upstreamUrl, { type: 'entra-obo', scope: OBO_SCOPE }), await caller()),
      ),
    );
    expect(failure.kind).toBe('auth');
    expect(failure.message).toMatch(/^server greet needs consent or an interactive sign-in/);
    expect(failure.message).toContain('AADSTS65001');
  });

  it('reports other Entra refusals with their code, never the secret', async () => {
    issuer.tokenReply = () => entraError('invalid_client', 7000215, 'Invalid client secret provided.');
    const failure = await failureOf(
      Promise.resolve(
        connector.headersFor(target(upstreamUrl, { type: 'entra-client-credentials', scope: 'api://other/.default' })),
      ),
    );
    expect(failure.message).toBe('Entra ID refused a token for server greet (invalid_client, AADSTS7000215)');
    expect(failure.message).not.toContain(GATEWAY_SECRET);
  });
});

describe('UpstreamTokenProvider settings', () => {
  let issuer: LocalEntraIssuer;
  const appTarget = target('https://203.0.113.10/mcp', { type: 'entra-client-credentials', scope: APP_SCOPE });

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
  });

  afterAll(async () => {
    await issuer?.stop();
  });

  const provider = (env: Record<string, string>) => new UpstreamTokenProvider(loadConfig(env), new MemoryStore());

  it('authenticates with a certificate (a signed client assertion) when AZURE_CLIENT_CERTIFICATE_PATH is set', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-cert-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=mcp-gateway-test',
        '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      ], { stdio: 'ignore' }); // prettier-ignore
      const pemPath = path.join(dir, 'gateway.pem');
      const certificatePem = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
      writeFileSync(pemPath, readFileSync(path.join(dir, 'key.pem'), 'utf8') + certificatePem);
      const env = entraEnv(issuer, { AZURE_CLIENT_CERTIFICATE_PATH: pemPath });
      delete env.AZURE_CLIENT_SECRET;
      const before = issuer.tokenRequests.length;
      expect(await provider(env).tokenFor(appTarget)).toBe(`app-token-${before + 1}`);
      const params = issuer.tokenRequests[before]?.params ?? {};
      expect(params).toMatchObject({
        grant_type: 'client_credentials',
        client_id: GATEWAY_CLIENT_ID,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      });
      expect(params.client_secret).toBeUndefined();
      const header = decodeProtectedHeader(params.client_assertion ?? '');
      const thumbprint = Buffer.from(
        new X509Certificate(certificatePem).fingerprint256.replace(/:/g, ''),
        'hex',
      ).toString('base64url');
      expect(header).toMatchObject({ alg: 'PS256', 'x5t#S256': thumbprint });
      expect(decodeJwt(params.client_assertion ?? '')).toMatchObject({
        iss: GATEWAY_CLIENT_ID,
        sub: GATEWAY_CLIENT_ID,
        aud: `${issuer.url}/${HOME_TENANT}/oauth2/v2.0/token`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says what is missing when the gateway has no credential or no app registration', async () => {
    const noSecret = entraEnv(issuer);
    delete noSecret.AZURE_CLIENT_SECRET;
    await expect(provider(noSecret).tokenFor(appTarget)).rejects.toThrow(
      'Entra ID upstream auth needs AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH on the gateway',
    );
    await expect(provider({ AUTH_MODE: 'entra' }).tokenFor(appTarget)).rejects.toThrow(
      'Entra ID upstream auth needs AZURE_TENANT_ID and AZURE_CLIENT_ID',
    );
  });

  it('cannot act on behalf of a dev-mode caller', async () => {
    const dev = provider({ ...entraEnv(issuer), AUTH_MODE: 'dev' });
    const principal = { tid: HOME_TENANT, oid: 'o', clientId: 'c', appOnly: false, scopes: ['s'], roles: [] };
    await expect(
      dev.tokenFor(target('https://203.0.113.10/mcp', { type: 'entra-obo', scope: OBO_SCOPE }), {
        principal,
        token: 'a.b.c',
      }),
    ).rejects.toThrow('server greet needs an Entra ID caller token (AUTH_MODE=entra)');
  });
});
