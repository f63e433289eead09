import { createHmac, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/** The gateway's app registration in tests, and a client app calling it. */
export const GATEWAY_CLIENT_ID = 'aaaaaaaa-0000-4000-8000-00000000a0a0';
export const CALLER_APP_ID = 'cccccccc-0000-4000-8000-00000000c0c0';
export const GATEWAY_SECRET = 'test-client-secret-value';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface TokenOptions {
  tid?: string;
  /** 2 (default): `login…/{tid}/v2.0`, `azp`, aud = client id; 1: `sts.windows.net/{tid}/`, `appid`, aud = App ID URI. */
  version?: 1 | 2;
  /** Signs with this key instead of the tenant's current one. */
  key?: SigningKey;
  /** Header fields over the defaults (`alg: RS256`, `kid`, `typ: JWT`). */
  header?: Record<string, unknown>;
}

export interface TokenRequest {
  tid: string;
  /** The form the client posted, as name → value. */
  params: Record<string, string>;
}

export interface TokenReply {
  status: number;
  body: Record<string, unknown>;
}

/**
 * An Entra-shaped authority on a loopback port: per-tenant RSA keys served as
 * JWKS at `/{tid}/discovery/v2.0/keys` (v1: `/{tid}/discovery/keys`), v1 and
 * v2 access tokens, and a token endpoint (`/{tid}/oauth2/v2.0/token`) that
 * records every grant it receives.
 */
export class LocalEntraIssuer {
  private listener?: LoopbackListener;
  private readonly keys = new Map<string, SigningKey[]>();
  private readonly hits = new Map<string, number>();
  readonly tokenRequests: TokenRequest[] = [];
  /** JWKS answer 503 while true (an outage). */
  jwksDown = false;
  /** Delay before every JWKS answer, to let concurrent requests pile up. */
  jwksDelayMs = 0;
  /** Decides the token endpoint's answer; the default issues tokens like Entra does. */
  tokenReply: (request: TokenRequest, count: number) => TokenReply = defaultTokenReply;

  private constructor() {}

  static async start(): Promise<LocalEntraIssuer> {
    const issuer = new LocalEntraIssuer();
    issuer.listener = await listenOnLoopback(http.createServer((req, res) => issuer.handle(req, res)));
    return issuer;
  }

  /** AZURE_AUTHORITY_HOST for a gateway trusting this issuer. */
  get url(): string {
    if (!this.listener) throw new Error('the issuer has not started');
    return this.listener.url;
  }

  async stop(): Promise<void> {
    await this.listener?.stop();
  }

  /** How many times the JWKS of `tid` (of token version `version`) was fetched. */
  jwksFetches(tid: string, version: 1 | 2 = 2): number {
    return this.hits.get(jwksPath(tid, version)) ?? 0;
  }

  /** The tenant's current signing key (created on first use). */
  async currentKey(tid: string): Promise<SigningKey> {
    const keys = this.keys.get(tid);
    const last = keys?.[keys.length - 1];
    return last ?? this.rotate(tid);
  }

  /** Publishes a new key for `tid` (the old ones stay published) and makes it the current one. */
  async rotate(tid: string): Promise<SigningKey> {
    const key = await newSigningKey();
    this.keys.set(tid, [...(this.keys.get(tid) ?? []), key]);
    return key;
  }

  /** A key this issuer never publishes: what a forger holds. */
  unpublishedKey(): Promise<SigningKey> {
    return newSigningKey();
  }

  /** The claims of a valid access token for the gateway (delegated, with `access_as_user`). */
  claims(options: TokenOptions = {}): Record<string, unknown> {
    const tid = options.tid ?? HOME_TENANT;
    const now = Math.floor(Date.now() / 1000);
    const common = {
      aud: options.version === 1 ? `api://${GATEWAY_CLIENT_ID}` : GATEWAY_CLIENT_ID,
      iat: now,
      nbf: now,
      exp: now + 3600,
      tid,
      oid: randomUUID(),
      sub: randomUUID(),
      scp: 'access_as_user',
      name: 'Ada Lovelace',
      preferred_username: 'ada@example.com',
    };
    return options.version === 1
      ? { ...common, iss: `https://sts.windows.net/${tid}/`, appid: CALLER_APP_ID, ver: '1.0' }
      : { ...common, iss: `${this.url}/${tid}/v2.0`, azp: CALLER_APP_ID, ver: '2.0' };
  }

  /** A signed access token: valid claims, then `overrides` (a value `undefined` removes the claim). */
  async token(overrides: Record<string, unknown> = {}, options: TokenOptions = {}): Promise<string> {
    const claims: Record<string, unknown> = { ...this.claims(options), ...overrides };
    for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
    const tid = typeof claims.tid === 'string' ? claims.tid : (options.tid ?? HOME_TENANT);
    const key = options.key ?? (await this.currentKey(tid));
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT', ...options.header })
      .sign(key.privateKey);
  }

  /** `alg: none`, no signature. */
  unsignedToken(overrides: Record<string, unknown> = {}): string {
    return `${b64(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64(JSON.stringify({ ...this.claims(), ...overrides }))}.`;
  }

  /** HS256 with the tenant's public key (PEM) as the HMAC secret: the classic key-confusion forgery. */
  async hs256WithPublicKey(tid = HOME_TENANT): Promise<string> {
    const key = await this.currentKey(tid);
    const pem = await exportSPKI((await importJWK(key.publicJwk, 'RS256', { extractable: true })) as CryptoKey);
    const input = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }))}.${b64(JSON.stringify(this.claims({ tid })))}`;
    return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0] ?? '';
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
    const jwks = /^\/([0-9a-f-]{36})\/discovery\/(?:v2\.0\/)?keys$/.exec(path);
    if (jwks?.[1] && req.method === 'GET') {
      const tid = jwks[1];
      setTimeout(() => {
        if (this.jwksDown) {
          res.writeHead(503).end();
          return;
        }
        const keys = (this.keys.get(tid) ?? []).map((key) => key.publicJwk);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
      }, this.jwksDelayMs);
      return;
    }
    const token = /^\/([0-9a-f-]{36})\/oauth2\/v2\.0\/token$/.exec(path);
    if (token?.[1] && req.method === 'POST') {
      const tid = token[1];
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        const request = { tid, params };
        this.tokenRequests.push(request);
        const reply = this.tokenReply(request, this.tokenRequests.length);
        res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
      });
      return;
    }
    res.writeHead(404).end();
  }
}

/** Tenants a test gateway allows (the first is its home tenant), and one it does not. */
export const HOME_TENANT = '11111111-1111-4111-8111-111111111111';
export const GUEST_TENANT = '22222222-2222-4222-8222-222222222222';
export const FOREIGN_TENANT = '99999999-9999-4999-8999-999999999999';

/** Like Entra: client credentials get no refresh token and no scope; OBO gets both. */
export function defaultTokenReply(request: TokenRequest, count: number): TokenReply {
  const base = { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600 };
  if (request.params.grant_type === 'client_credentials') {
    return { status: 200, body: { ...base, access_token: `app-token-${count}` } };
  }
  return {
    status: 200,
    body: {
      ...base,
      scope: request.params.scope ?? '',
      access_token: `obo-token-${count}`,
      refresh_token: `rt-${count}`,
    },
  };
}

/** An Entra-style error answer (e.g. AADSTS65001 consent_required). */
export function entraError(error: string, code: number, description: string, suberror?: string): TokenReply {
  return {
    status: 400,
    body: {
      error,
      error_description: `AADSTS${code}: ${description}`,
      error_codes: [code],
      ...(suberror ? { suberror } : {}),
      timestamp: new Date().toISOString(),
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
    },
  };
}

/** Environment for a gateway trusting `issuer` (two allowed tenants, v1 tokens accepted). */
export function entraEnv(issuer: LocalEntraIssuer, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    AUTH_MODE: 'entra',
    AZURE_TENANT_ID: HOME_TENANT,
    AZURE_CLIENT_ID: GATEWAY_CLIENT_ID,
    AZURE_ALLOWED_TENANTS: `${HOME_TENANT},${GUEST_TENANT}`,
    AZURE_AUTHORITY_HOST: issuer.url,
    AZURE_CLIENT_SECRET: GATEWAY_SECRET,
    AZURE_ACCEPT_V1_TOKENS: 'true',
    PUBLIC_URL: 'https://gateway.test',
    ...overrides,
  };
}

/** The same header and signature over other claims: the signature no longer matches. */
export function tamper(token: string, claims: Record<string, unknown>): string {
  const [header, , signature] = token.split('.');
  return `${header}.${b64(JSON.stringify(claims))}.${signature}`;
}

function jwksPath(tid: string, version: 1 | 2): string {
  return version === 1 ? `/${tid}/discovery/keys` : `/${tid}/discovery/v2.0/keys`;
}

async function newSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' } };
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
