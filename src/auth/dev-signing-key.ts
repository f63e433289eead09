import { createHash, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { calculateJwkThumbprint, type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';

/** Claims that make a development token recognisable as one, and never valid as an Entra token. */
export const DEV_ISSUER = 'urn:mcp-gateway:dev';
export const DEV_AUDIENCE = 'api://mcp-gateway-dev';
export const DEV_TENANT_ID = '00000000-0000-0000-0000-000000000000';
export const DEV_CLIENT_ID = 'mcp-gateway-cli';
export const DEV_KEY_FILE = 'dev-signing-key.json';

export interface DevSigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export interface DevTokenRequest {
  roles: string[];
  scopes: string[];
  ttlSeconds: number;
  /** A token an app got for itself: no `scp`, roles only. */
  appOnly?: boolean;
  /** Display name; also what the (stable) `oid` is derived from. */
  name?: string;
}

/**
 * The local signing key of `AUTH_MODE=dev`, in `DATA_DIR`. The gateway and
 * `mcp-gateway token` both load it, and whichever comes first creates it
 * (exclusively, so two at once agree on one key).
 */
export async function loadOrCreateDevKey(dataDir: string): Promise<DevSigningKey> {
  const file = path.join(dataDir, DEV_KEY_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      return await readKey(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw error;
    }
    await createKey(dataDir, file);
  }
}

async function readKey(file: string): Promise<DevSigningKey> {
  const stored = JSON.parse(await fs.readFile(file, 'utf8')) as { kid?: unknown; jwk?: JWK };
  if (typeof stored.kid !== 'string' || !stored.jwk || stored.jwk.kty !== 'RSA') {
    throw new Error(`${file} is not a development signing key; delete it to have a new one made`);
  }
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = stored.jwk;
  return {
    kid: stored.kid,
    privateKey: (await importJWK(stored.jwk, 'RS256')) as CryptoKey,
    publicKey: (await importJWK(publicJwk, 'RS256')) as CryptoKey,
  };
}

async function createKey(dataDir: string, file: string): Promise<void> {
  await fs.mkdir(dataDir, { recursive: true });
  const { privateKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  // Written aside, then linked into place: the link fails if another process got there first, and no
  // reader ever sees a half-written file.
  const temp = `${file}.${randomUUID()}.tmp`;
  await fs.writeFile(temp, JSON.stringify({ kid, jwk }), { mode: 0o600 });
  try {
    await fs.link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await fs.unlink(temp).catch(() => undefined);
  }
}

/** A token the gateway accepts in dev mode. */
export async function issueDevToken(key: DevSigningKey, request: DevTokenRequest): Promise<string> {
  const name = request.name ?? 'developer';
  const oid = guidOf(`${request.appOnly ? 'app' : 'user'}:${name}`);
  const claims: Record<string, unknown> = {
    tid: DEV_TENANT_ID,
    oid,
    azp: DEV_CLIENT_ID,
    ver: '2.0',
    idtyp: request.appOnly ? 'app' : 'user',
    name,
  };
  if (!request.appOnly && request.scopes.length > 0) claims.scp = request.scopes.join(' ');
  if (request.roles.length > 0) claims.roles = request.roles;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject(oid)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(`${request.ttlSeconds}s`)
    .sign(key.privateKey);
}

/** A stable GUID-shaped id for a name, so the same developer is the same principal across tokens. */
function guidOf(seed: string): string {
  const hex = createHash('sha256').update(`mcp-gateway-dev:${seed}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
