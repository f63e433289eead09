import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { ICachePlugin, ISerializableTokenCache, TokenCacheContext } from '@azure/msal-node';
import type { KeyValueStore } from '../redis/key-value-store';

/**
 * One partition of msal's token cache in the key-value store (Redis when
 * configured), encrypted with a key derived from the gateway's credential:
 * the store never holds a usable token. A store that fails is a cache miss.
 */
export class PartitionedTokenCache implements ICachePlugin {
  constructor(
    private readonly store: KeyValueStore,
    private readonly key: string,
    private readonly ttlMs: number,
    private readonly cipherKey: Buffer,
  ) {}

  beforeCacheAccess(context: TokenCacheContext): Promise<void> {
    return this.loadInto(context.tokenCache);
  }

  /**
   * Reads the partition into msal's in-memory cache. msal calls this itself for
   * client credentials, but reads the cache for on-behalf-of without it: call it first.
   */
  async loadInto(cache: Pick<ISerializableTokenCache, 'deserialize'>): Promise<void> {
    let stored: string | null = null;
    try {
      stored = await this.store.get(this.key);
    } catch {
      return;
    }
    const plain = stored ? decrypt(stored, this.cipherKey) : undefined;
    if (plain) cache.deserialize(plain);
  }

  async afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!context.cacheHasChanged) return;
    try {
      await this.store.set(this.key, encrypt(context.tokenCache.serialize(), this.cipherKey), this.ttlMs);
    } catch {
      // Not cached this time: the next call asks Entra again.
    }
  }
}

/** A 256-bit key for the cache, from the gateway's secret or certificate key. */
export function cacheKeyFrom(credential: string): Buffer {
  return createHash('sha256').update('mcp-gateway msal token cache\0').update(credential).digest();
}

function encrypt(plain: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `v1.${iv.toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

/** Undefined when the entry is not ours or was written under another credential (rotated secret). */
function decrypt(stored: string, key: Buffer): string | undefined {
  const [version, iv, body, tag] = stored.split('.');
  if (version !== 'v1' || !iv || !body || !tag) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
