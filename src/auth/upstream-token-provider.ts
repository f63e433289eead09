import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as MsalNode from '@azure/msal-node';
import type { ConfidentialClientApplication, Configuration, INetworkModule } from '@azure/msal-node';
import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig, AuthConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { KEY_VALUE_STORE, type KeyValueStore } from '../redis/key-value-store';
import type { UpstreamTarget } from '../registry/server.schema';
import { UpstreamError } from '../upstream/upstream-error';
import { cacheKeyFrom, PartitionedTokenCache } from './msal-cache-plugin';
import { FetchNetworkClient } from './msal-network-client';
import type { UpstreamCaller } from './principal';

const CACHE_PREFIX = 'mcp-gateway:msal:';
const APP_CACHE_TTL_MS = 24 * 3600_000;
/** A tenant as an authority names it: the GUID of a verified token's `tid`. */
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Credential = Pick<NonNullable<Configuration['auth']>, 'clientSecret' | 'clientCertificate'>;
type Msal = typeof MsalNode;

/** msal-node, loaded the first time an upstream needs a token: most gateways never use it. */
let msal: Promise<Msal> | undefined;
function loadMsal(): Promise<Msal> {
  msal ??= import('@azure/msal-node');
  return msal;
}

/**
 * Tokens the gateway presents to Entra-protected upstreams: on behalf of the
 * calling user (`entra-obo`, with the caller's own token as the assertion) or
 * as itself (`entra-client-credentials`). msal's cache lives in the key-value
 * store, one partition per caller tenant and token (OBO) or per app (client credentials),
 * so instances share it; msal renews a cached token five minutes before it
 * expires. The caller's token itself never leaves the gateway except as the
 * OBO assertion to Entra.
 */
@Injectable()
export class UpstreamTokenProvider {
  private readonly auth: AuthConfig;
  private readonly network: INetworkModule = new FetchNetworkClient();
  private credential?: { config: Credential; cipherKey: Buffer };
  /** One token request per partition and scope at a time; the others wait for it. */
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(KEY_VALUE_STORE) private readonly store: KeyValueStore,
  ) {
    this.auth = config.auth;
  }

  /** A bearer token for `target` (an `entra-*` server), for `caller` when the server needs on-behalf-of. */
  async tokenFor(target: UpstreamTarget, caller?: UpstreamCaller): Promise<string> {
    const { auth } = target;
    if (auth.type !== 'entra-obo' && auth.type !== 'entra-client-credentials') {
      throw new UpstreamError('auth', `server ${target.slug} does not use Entra ID`);
    }
    const scopes = auth.scope.split(/\s+/).filter((scope) => scope.length > 0);
    if (auth.type === 'entra-obo') {
      if (!caller) {
        throw new UpstreamError(
          'auth',
          `server ${target.slug} acts on behalf of the signed-in user: it needs a caller`,
        );
      }
      if (caller.principal.appOnly) {
        throw new UpstreamError(
          'auth',
          `server ${target.slug} acts on behalf of a signed-in user; an app-only caller cannot use it`,
        );
      }
      if (this.auth.mode !== 'entra') {
        throw new UpstreamError('auth', `server ${target.slug} needs an Entra ID caller token (AUTH_MODE=entra)`);
      }
      // Asked of the caller's own tenant, as Entra requires of a multi-tenant app: the home tenant's authority refuses
      // a guest tenant's user, or answers for another account of that name (Microsoft's guidance: the tid of the
      // assertion is the authority of the on-behalf-of request).
      const tenant = caller.principal.tid.toLowerCase();
      if (!TENANT_ID.test(tenant))
        throw new UpstreamError('auth', `the caller's tenant is not one Entra ID can be asked of`);
      const hash = createHash('sha256').update(caller.token).digest('base64url');
      const partition = `${CACHE_PREFIX}obo:${tenant}:${hash}`;
      // msal finds OBO tokens by the assertion's hash: the partition is of use while the caller's token lives.
      const ttlMs = Math.max(60_000, (caller.expiresAt ?? 0) * 1000 - Date.now());
      return this.once(`${partition} ${auth.scope}`, () =>
        this.acquire(target, tenant, partition, ttlMs, (app) =>
          app.acquireTokenOnBehalfOf({ oboAssertion: caller.token, scopes }),
        ),
      );
    }
    const tenant = this.auth.tenantId;
    const partition = `${CACHE_PREFIX}app:${tenant ?? '-'}:${this.auth.clientId ?? '-'}`;
    return this.once(`${partition} ${auth.scope}`, () =>
      this.acquire(target, tenant, partition, APP_CACHE_TTL_MS, (app) =>
        app.acquireTokenByClientCredential({ scopes }),
      ),
    );
  }

  private once(key: string, run: () => Promise<string>): Promise<string> {
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = run().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async acquire(
    target: UpstreamTarget,
    tenant: string | undefined,
    partition: string,
    ttlMs: number,
    request: (app: ConfidentialClientApplication) => Promise<{ accessToken: string } | null>,
  ): Promise<string> {
    const msal = await loadMsal();
    const { app, cache } = this.application(msal, tenant, partition, ttlMs);
    let result;
    try {
      await cache.loadInto(app.getTokenCache());
      result = await request(app);
    } catch (error) {
      throw upstreamAuthError(msal, target, error);
    }
    if (!result?.accessToken) throw new UpstreamError('auth', `Entra ID returned no token for server ${target.slug}`);
    return result.accessToken;
  }

  /**
   * A client application of `tenantId`'s authority, bound to one cache partition (Microsoft's pattern for
   * a distributed cache). It never calls discovery: the authority's metadata is
   * built from AZURE_AUTHORITY_HOST, and its endpoints are what msal calls.
   */
  private application(
    { ConfidentialClientApplication, LogLevel }: Msal,
    tenantId: string | undefined,
    partition: string,
    ttlMs: number,
  ): { app: ConfidentialClientApplication; cache: PartitionedTokenCache } {
    const { clientId, authorityHost } = this.auth;
    if (!this.auth.tenantId || !tenantId || !clientId) {
      throw new UpstreamError('auth', 'Entra ID upstream auth needs AZURE_TENANT_ID and AZURE_CLIENT_ID');
    }
    const credential = this.loadCredential();
    const host = new URL(authorityHost).host;
    const base = `${authorityHost}/${tenantId}`;
    const cache = new PartitionedTokenCache(this.store, partition, ttlMs, credential.cipherKey);
    const app = new ConfidentialClientApplication({
      auth: {
        clientId,
        ...credential.config,
        // msal insists on an https authority; it is only an identifier here, the endpoints below are used as given.
        authority: `https://${host}/${tenantId}`,
        knownAuthorities: [host],
        cloudDiscoveryMetadata: JSON.stringify({
          tenant_discovery_endpoint: `${base}/v2.0/.well-known/openid-configuration`,
          'api-version': '1.1',
          metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
        }),
        authorityMetadata: JSON.stringify({
          token_endpoint: `${base}/oauth2/v2.0/token`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          issuer: `${base}/v2.0`,
          jwks_uri: `${base}/discovery/v2.0/keys`,
        }),
      },
      cache: { cachePlugin: cache },
      system: {
        networkClient: this.network,
        loggerOptions: { piiLoggingEnabled: false, logLevel: LogLevel.Error, loggerCallback: () => undefined },
      },
    });
    return { app, cache };
  }

  /** The certificate (preferred) or the secret, read once. */
  private loadCredential(): { config: Credential; cipherKey: Buffer } {
    if (this.credential) return this.credential;
    const { clientCertificatePath, clientSecret } = this.auth;
    if (clientCertificatePath) {
      let pem;
      try {
        pem = readFileSync(clientCertificatePath, 'utf8');
      } catch {
        throw new UpstreamError('auth', 'AZURE_CLIENT_CERTIFICATE_PATH cannot be read');
      }
      const certificatePem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
      if (!certificatePem) throw new UpstreamError('auth', 'AZURE_CLIENT_CERTIFICATE_PATH holds no certificate');
      let privateKey;
      let certificate;
      try {
        privateKey = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' }).toString();
        certificate = new X509Certificate(certificatePem);
      } catch {
        throw new UpstreamError('auth', 'AZURE_CLIENT_CERTIFICATE_PATH holds no usable private key and certificate');
      }
      this.credential = {
        config: {
          clientCertificate: {
            thumbprintSha256: certificate.fingerprint256.replace(/:/g, '').toLowerCase(),
            privateKey,
            // Sent in the assertion header, for subject name / issuer authentication.
            x5c: certificate.raw.toString('base64'),
          },
        },
        cipherKey: cacheKeyFrom(privateKey),
      };
    } else if (clientSecret) {
      this.credential = { config: { clientSecret }, cipherKey: cacheKeyFrom(clientSecret) };
    } else {
      throw new UpstreamError(
        'auth',
        'Entra ID upstream auth needs AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH on the gateway',
      );
    }
    return this.credential;
  }
}

/** An msal failure as an upstream `auth` error whose message an MCP client can act on (no token, no secret). */
function upstreamAuthError(
  { AuthError, InteractionRequiredAuthError }: Msal,
  target: UpstreamTarget,
  error: unknown,
): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error instanceof AuthError) {
    const code = /AADSTS\d+/.exec(error.errorMessage)?.[0];
    const detail = [error.errorCode, code].filter(Boolean).join(', ');
    const interaction =
      error instanceof InteractionRequiredAuthError ||
      (code !== undefined && ['AADSTS65001', 'AADSTS50076', 'AADSTS50079', 'AADSTS50158'].includes(code));
    const claims = error instanceof InteractionRequiredAuthError && error.claims ? error.claims : undefined;
    if (claims) {
      return new UpstreamError(
        'auth',
        `server ${target.slug} needs a token that satisfies a conditional access policy (${detail}); ` +
          'sign in again asking for the claims in the WWW-Authenticate challenge',
        undefined,
        claims,
      );
    }
    if (interaction) {
      return new UpstreamError(
        'auth',
        `server ${target.slug} needs consent or an interactive sign-in that the gateway cannot do on your behalf ` +
          `(${detail}); ask an administrator to grant consent for its scope`,
      );
    }
    return new UpstreamError('auth', `Entra ID refused a token for server ${target.slug} (${detail})`);
  }
  const name = (error as { name?: unknown } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new UpstreamError('timeout', `Entra ID did not answer in time for server ${target.slug}`);
  }
  return new UpstreamError('auth', `no token for server ${target.slug} could be obtained from Entra ID`);
}
