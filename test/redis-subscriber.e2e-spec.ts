import { randomUUID } from 'node:crypto';
import { createLogger } from '../src/logging/logger';
import { McpSessionStore } from '../src/mcp/session-store';
import { ClusterSignals } from '../src/redis/cluster-signals';
import { RedisStore } from '../src/redis/redis-store';
import { waitUntil } from './support/eventually';
import { type GuardedUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { REDIS_URL } from './support/services';
import { initializeRaw, mcpHeaders, openEventStream } from './support/raw-mcp';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, withHostPort } from './support/tcp-proxy';
import { GREET_TOOLS } from './support/upstream';

const logger = createLogger({ logLevel: 'silent' });
/**
 * What a replica's listeners do once its Redis subscriber, whose path alone went silent (the relay holds back the
 * answers of its connection, the latest the relay took), has been replaced: the messages published meanwhile never
 * reached them.
 */
describe('a gateway whose Redis subscriber alone went silent', () => {
  const { host, port } = hostPortOf(REDIS_URL);
  const relay = new StallableProxy(host, port);
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;
  /** Another replica's sessions, on the same Redis. */
  let elsewhere: RedisStore;

  beforeAll(async () => {
    await relay.start();
    deployment = await startGuardedUpstream({
      slug: 'subscriber',
      role,
      tools: GREET_TOOLS,
      env: { REDIS_URL: withHostPort(REDIS_URL, relay.port), REDIS_COMMAND_TIMEOUT_MS: '200' },
    });
    elsewhere = await RedisStore.connect(REDIS_URL, logger);
  });

  afterAll(async () => {
    relay.resume();
    await deployment?.stop();
    await elsewhere?.close();
    await relay.stop();
  });

  it('ends the event streams of /mcp sessions another replica deleted meanwhile, and serves them no more from its cache', async () => {
    const token = await deployment.issuer.token({ roles: [role] });
    const url = `${deployment.gw.url}/mcp`;
    const kept = await initializeRaw(url, token);
    const deleted = await initializeRaw(url, token);
    // Opened first, the kept session's stream is checked first: it stands when the deleted one's ends.
    const keptStream = await openEventStream(url, token, kept);
    const deletedStream = await openEventStream(url, token, deleted);
    try {
      // Served here, so cached here.
      expect((await ping(url, token, deleted)).status).toBe(200);

      relay.stallLatest();
      await new McpSessionStore(elsewhere, 60_000).delete(deleted);
      await waitUntil(() => deletedStream.ended, 'the stream of the session deleted elsewhere ends');
      expect(keptStream.ended).toBe(false);
      expect((await ping(url, token, deleted)).status).toBe(404);
      expect((await ping(url, token, kept)).status).toBe(200);
      const lost = deployment.gw.logs.lines.filter((line) => line.msg === 'Redis connection lost; retrying');
      expect(lost.map(({ connection }) => connection)).toEqual(['subscriber']);
    } finally {
      keptStream.close();
      deletedStream.close();
      relay.resume();
    }
  }, 60_000);
});

describe('cluster signals while the subscriber alone went silent', () => {
  const { host, port } = hostPortOf(REDIS_URL);
  const relay = new StallableProxy(host, port);

  beforeAll(() => relay.start());
  afterAll(() => relay.stop());

  it('count a signal that may have gone by unheard as raised', async () => {
    const store = await RedisStore.connect(withHostPort(REDIS_URL, relay.port), logger, { commandTimeoutMs: 100 });
    try {
      let heard = 0;
      await new ClusterSignals(store).listen('catalog:stale', () => heard++);
      relay.stallLatest();
      await waitUntil(() => heard === 1, 'the listener hears of the signal it may have missed');
    } finally {
      relay.resume();
      await store.close();
    }
  }, 60_000);
});

async function ping(url: string, token: string, sessionId: string): Promise<{ status: number }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: mcpHeaders(token, sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', id: randomUUID(), method: 'ping' }),
  });
  await res.text();
  return { status: res.status };
}
