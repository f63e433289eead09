import { type CryptoKey, importJWK, type JWK } from 'jose';
import { VerificationUnavailable } from './auth-errors';

export interface SigningKeyCacheOptions {
  /** Keys older than this are fetched again before use; while that fails, they keep serving. */
  maxAgeMs: number;
  /**
   * Least time between two refetches caused by an unknown `kid`, and between retries of a failing fetch (the first
   * one included: while a JWKS that has never been fetched cools down, verification is unavailable at once).
   */
  cooldownMs?: number;
  /** Bound on one JWKS fetch. */
  timeoutMs?: number;
  onFetchError?: (url: string, error: unknown) => void;
}

/** The default `cooldownMs`: at most one fetch of a JWKS per 30 s while it fails or lacks a kid asked for. */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000;

/** Why no key was returned although the key set is available. */
export class UnknownSigningKey extends Error {
  constructor(readonly kid: string) {
    super(`no signing key with kid ${kid}`);
    this.name = 'UnknownSigningKey';
  }
}

interface KeySet {
  /** Undefined until a fetch has succeeded. */
  keys?: Map<string, CryptoKey>;
  fetchedAt: number;
  /** When a fetch was last started for an unknown kid, for age, or after a failed one. */
  lastForcedAt: number;
  /** Whether the last fetch failed: a kid not among the keys held may then be one that could not be seen. */
  failing: boolean;
}

/**
 * RS256 verification keys of JWKS documents, by URL and `kid`. Concurrent
 * callers share one fetch; an unknown `kid` refetches at most once per
 * cooldown (key rotation) instead of on every request (a cheap DoS otherwise),
 * and so does a JWKS whose fetch failed, whether or not it was ever fetched;
 * keys already held keep serving while their JWKS cannot be fetched.
 */
export class SigningKeyCache {
  private readonly sets = new Map<string, KeySet>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly cooldownMs: number;
  private readonly timeoutMs: number;
  /** JWKS fetches started and those that failed, for metrics. */
  readonly stats = { fetches: 0, fetchFailures: 0 };

  constructor(private readonly options: SigningKeyCacheOptions) {
    this.cooldownMs = options.cooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  /**
   * The key for `kid` at `url`. `UnknownSigningKey` when the JWKS, as fetched, has no such key;
   * `VerificationUnavailable` when it could not be fetched (or a failed fetch is cooling down) and holds no such key.
   */
  async keyFor(url: string, kid: string): Promise<CryptoKey> {
    const set = this.sets.get(url);
    if (!set?.keys) {
      // Never fetched, or every fetch so far failed: one attempt per cooldown, for all callers together.
      if (set && !this.inFlight.has(url) && !this.mayForce(set)) throw this.unavailable(url);
      await this.refresh(url).catch(() => {
        throw this.unavailable(url);
      });
      return found(this.sets.get(url), kid);
    }
    if (Date.now() - set.fetchedAt > this.options.maxAgeMs && this.mayForce(set)) {
      // Stale: refresh in the background and keep serving the keys held, even while the endpoint fails.
      this.refresh(url).catch(() => undefined);
    }
    if (set.keys.has(kid)) return found(set, kid);
    // An unknown kid: a rotation this process has not seen yet, or a forged header. When the JWKS cannot be read
    // now, which it is cannot be told: unavailable (503), so that a client does not discard a valid token.
    const pending = this.inFlight.get(url) ?? (this.mayForce(set) ? this.refresh(url) : undefined);
    if (pending) {
      await pending.catch(() => {
        throw this.unavailable(url);
      });
    } else if (set.failing) {
      throw this.unavailable(url);
    }
    return found(set, kid);
  }

  /** Why `url` gave no key, with the time left until its failed fetch's cooldown lets it be fetched again. */
  private unavailable(url: string): VerificationUnavailable {
    const now = Date.now();
    const retryAt = (this.sets.get(url)?.lastForcedAt ?? now) + this.cooldownMs;
    return new VerificationUnavailable(
      'the signing keys could not be fetched',
      Math.max(1, Math.ceil((retryAt - now) / 1000)),
    );
  }

  private mayForce(set: KeySet): boolean {
    const now = Date.now();
    if (now - set.lastForcedAt < this.cooldownMs) return false;
    set.lastForcedAt = now;
    return true;
  }

  /** Fetches the JWKS at `url` once for all concurrent callers; rejects when the fetch fails. */
  private refresh(url: string): Promise<void> {
    let pending = this.inFlight.get(url);
    if (!pending) {
      this.stats.fetches += 1;
      const startedAt = Date.now();
      pending = this.fetchKeys(url)
        .then(
          (keys) => {
            const set = this.sets.get(url);
            if (set) {
              set.keys = keys;
              set.fetchedAt = Date.now();
              set.failing = false;
            } else {
              this.sets.set(url, { keys, fetchedAt: Date.now(), lastForcedAt: 0, failing: false });
            }
          },
          (error: unknown) => {
            this.stats.fetchFailures += 1;
            const set = this.sets.get(url);
            if (set) set.failing = true;
            // A first fetch that failed starts the cooldown too (negative caching).
            else this.sets.set(url, { fetchedAt: 0, lastForcedAt: startedAt, failing: true });
            this.options.onFetchError?.(url, error);
            throw error;
          },
        )
        .finally(() => this.inFlight.delete(url));
      this.inFlight.set(url, pending);
    }
    return pending;
  }

  private async fetchKeys(url: string): Promise<Map<string, CryptoKey>> {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(this.timeoutMs),
      redirect: 'error',
      headers: { accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`JWKS endpoint answered HTTP ${response.status}`);
    const body = (await response.json()) as { keys?: unknown };
    if (!Array.isArray(body.keys)) throw new Error('JWKS document has no keys array');
    const keys = new Map<string, CryptoKey>();
    for (const jwk of body.keys as JWK[]) {
      if (jwk.kty !== 'RSA' || typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      try {
        keys.set(jwk.kid, await importJWK({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'RS256'));
      } catch {
        // One unusable key does not spoil the others.
      }
    }
    if (keys.size === 0) throw new Error('JWKS document has no usable RSA signing key');
    return keys;
  }
}

function found(set: KeySet | undefined, kid: string): CryptoKey {
  const key = set?.keys?.get(kid);
  if (!key) throw new UnknownSigningKey(kid);
  return key;
}
