import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { VerificationUnavailable } from './auth-errors';
import { SigningKeyCache, UnknownSigningKey } from './signing-key-cache';

/** A JWKS endpoint on a loopback port that counts its fetches and can be taken down. */
class JwksEndpoint {
  readonly keys: JWK[] = [];
  down = false;
  fetches = 0;
  private readonly server = http.createServer((_req, res) => {
    this.fetches += 1;
    if (this.down) res.writeHead(503).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/keys`;
  }

  async publish(kid: string): Promise<void> {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    this.keys.push({ ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('SigningKeyCache', () => {
  const cooldownMs = 30_000;
  let endpoint: JwksEndpoint;
  let now: number;

  beforeEach(async () => {
    endpoint = new JwksEndpoint();
    await endpoint.start();
    await endpoint.publish('first');
    // The cache's clock, moved by hand: cooldowns are passed without waiting.
    now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await endpoint.stop();
  });

  const cacheOf = () => new SigningKeyCache({ maxAgeMs: 3_600_000, cooldownMs });

  it('fetches a JWKS that failed its first fetch at most once per cooldown, refusing at once meanwhile', async () => {
    const cache = cacheOf();
    endpoint.down = true;
    const attempts = await Promise.allSettled(Array.from({ length: 10 }, () => cache.keyFor(endpoint.url, 'first')));
    for (let i = 0; i < 10; i++) {
      await expect(cache.keyFor(endpoint.url, `forged-${i}`)).rejects.toBeInstanceOf(VerificationUnavailable);
    }
    expect(attempts.map((attempt) => attempt.status)).toEqual(attempts.map(() => 'rejected'));
    expect(attempts.every((a) => a.status === 'rejected' && a.reason instanceof VerificationUnavailable)).toBe(true);
    expect(endpoint.fetches).toBe(1);

    endpoint.down = false;
    now += cooldownMs - 1;
    await expect(cache.keyFor(endpoint.url, 'first')).rejects.toBeInstanceOf(VerificationUnavailable);
    expect(endpoint.fetches).toBe(1);
    now += 1;
    await expect(cache.keyFor(endpoint.url, 'first')).resolves.toBeDefined();
    expect(endpoint.fetches).toBe(2);
  });

  it('says how long until a failing JWKS is fetched again: the cooldown left, in whole seconds rounded up', async () => {
    const cache = cacheOf();
    endpoint.down = true;
    const retryAfter = async (kid: string) => {
      const error = await cache.keyFor(endpoint.url, kid).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(VerificationUnavailable);
      return (error as VerificationUnavailable).retryAfterSeconds;
    };
    expect(await retryAfter('first')).toBe(30);
    now += 10_500;
    expect(await retryAfter('first')).toBe(20);
    now += cooldownMs - 10_500 - 1;
    expect(await retryAfter('forged')).toBe(1);
    expect(endpoint.fetches).toBe(1);
    // The next fetch fails too: a new cooldown from then.
    now += 1;
    expect(await retryAfter('first')).toBe(30);
    expect(endpoint.fetches).toBe(2);

    // Keys held, a kid unknown while the JWKS is down: the same, from the failed refetch.
    endpoint.down = false;
    now += cooldownMs;
    await expect(cache.keyFor(endpoint.url, 'first')).resolves.toBeDefined();
    now += cooldownMs;
    endpoint.down = true;
    expect(await retryAfter('rotated')).toBe(30);
    now += 29_000;
    expect(await retryAfter('rotated')).toBe(1);
    expect(endpoint.fetches).toBe(4);
  });

  it('answers a kid it does not hold as unavailable, not unknown, while the JWKS cannot be read', async () => {
    const cache = cacheOf();
    await expect(cache.keyFor(endpoint.url, 'first')).resolves.toBeDefined();
    await endpoint.publish('rotated');
    endpoint.down = true;
    await expect(cache.keyFor(endpoint.url, 'rotated')).rejects.toBeInstanceOf(VerificationUnavailable);
    expect(endpoint.fetches).toBe(2);
    // Cooling down after that failure: still unavailable, without another fetch; the keys held still serve.
    await expect(cache.keyFor(endpoint.url, 'rotated')).rejects.toBeInstanceOf(VerificationUnavailable);
    await expect(cache.keyFor(endpoint.url, 'forged')).rejects.toBeInstanceOf(VerificationUnavailable);
    await expect(cache.keyFor(endpoint.url, 'first')).resolves.toBeDefined();
    expect(endpoint.fetches).toBe(2);

    endpoint.down = false;
    now += cooldownMs;
    await expect(cache.keyFor(endpoint.url, 'rotated')).resolves.toBeDefined();
    expect(endpoint.fetches).toBe(3);
    // Read a moment ago and without that kid: a key the tenant never published.
    await expect(cache.keyFor(endpoint.url, 'forged')).rejects.toBeInstanceOf(UnknownSigningKey);
    expect(endpoint.fetches).toBe(3);
  });
});
