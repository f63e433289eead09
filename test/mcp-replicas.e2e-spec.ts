import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import request from 'supertest';
import { entraEnv, LocalEntraIssuer } from './support/entra-issuer';
import { eventually, waitUntil } from './support/eventually';
import { type Replica, startReplicas, stopReplicas } from './support/gateway-replicas';
import { type HeldPort, holdPort } from './support/loopback';
import { connectClient } from './support/mcp-client';
import { initializeRaw, mcpHeaders, openEventStream } from './support/raw-mcp';
import { type BalancedRequest, RoundRobinProxy } from './support/round-robin-proxy';
import { createScratchDatabase, REDIS_URL } from './support/services';
import { SlowUpstream } from './support/slow-upstream';
import { BYE_TOOLS, type FixtureTool, GREET_TOOLS, TestUpstream } from './support/upstream';

const SHOUT: FixtureTool = { name: 'shout', description: 'Shouts a name', reply: (u) => `${u.toUpperCase()}!` };
const STARTUP_MS = 120_000;

/**
 * Two `mcp-gateway serve` processes sharing PostgreSQL and Redis behind a
 * round-robin balancer with no stickiness: one client session must work
 * whichever replica each of its requests reaches, server-to-client messages
 * included.
 */
describe('two gateway replicas behind a round-robin balancer', () => {
  let issuer: LocalEntraIssuer;
  let greet: TestUpstream;
  let bye: TestUpstream;
  let slow: SlowUpstream;
  let database: { url: string; drop: () => Promise<void> };
  let replicas: Replica[] = [];
  let proxy: RoundRobinProxy;
  const run = randomUUID().slice(0, 8);
  const greetSlug = `greet-${run}`;
  const byeSlug = `bye-${run}`;
  const slowSlug = `slow-${run}`;
  const role = `Replicated.${run}`;
  const ids = new Map<string, string>();

  /** Replicas a test killed or stopped itself, checking how they exited. */
  const stoppedByTests = new Set<Replica>();
  /**
   * The ports of those replicas, held (`holdPort`) from their exit until the balancer stops: it still sends to them,
   * and must be refused (ECONNREFUSED, so that it tries the next replica), not reach whatever process of another
   * suite the system would give the port to.
   */
  const heldPorts: HeldPort[] = [];

  /** Waits for a replica a test signalled to exit, and holds its port; the exit code. */
  async function exitOf(replica: Replica): Promise<number | null> {
    const code = await replica.process.exited;
    heldPorts.push(await holdPort(Number(new URL(replica.url).port)));
    return code;
  }

  const replicaA = (): Replica => replicas[0]!;
  const replicaB = (): Replica => replicas[1]!;

  async function register(via: Replica, slug: string, url: string): Promise<void> {
    const res = await request(via.url)
      .post('/api/v1/servers')
      .send({ name: `com.example.replicas/${slug}`, slug, url, allowedRoles: [role] })
      .expect(201);
    ids.set(slug, res.body.id as string);
  }

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    greet = await TestUpstream.start('greet', GREET_TOOLS);
    bye = await TestUpstream.start('bye', BYE_TOOLS);
    slow = await SlowUpstream.start();
    database = await createScratchDatabase();
    replicas = await startReplicas(2, {
      ...entraEnv(issuer),
      DATABASE_URL: database.url,
      REDIS_URL,
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
      HEALTH_PROBE_INTERVAL_MS: '0',
    });
    proxy = await RoundRobinProxy.start(replicas.map((replica) => replica.url));
    await register(replicaA(), greetSlug, greet.url);
    await register(replicaA(), slowSlug, slow.url);
    // Discovery runs on the replica that took the registration; the other one's catalog follows by polling.
    const token = await issuer.token({ roles: [role] });
    for (const replica of replicas) {
      const session = await initializeRaw(`${replica.url}/mcp`, token);
      await eventually(async () => {
        expect(await toolNames(replica.url, token, session)).toEqual(
          expect.arrayContaining([`${greetSlug}__echoHai`, `${slowSlug}__slow`]),
        );
      }, 30_000);
    }
  }, STARTUP_MS);

  afterAll(async () => {
    const live = replicas.filter((replica) => !stoppedByTests.has(replica));
    if (live.length > 0) {
      for (const id of ids.values()) await request(live[0]!.url).delete(`/api/v1/servers/${id}`);
    }
    await proxy?.stop();
    for (const held of heldPorts) held.release();
    const codes = await stopReplicas(replicas);
    await database?.drop();
    await greet?.stop();
    await bye?.stop();
    await slow?.stop();
    await issuer?.stop();
    expect(codes.filter((_code, index) => !stoppedByTests.has(replicas[index]!)).every((code) => code === 0)).toBe(
      true,
    );
  }, STARTUP_MS);

  /** Opens a session (SDK client, through the balancer) and waits until its event stream is open somewhere. */
  async function connectThroughBalancer(path: string, token: string): Promise<{ client: Client; sessionId: string }> {
    const { client, transport } = await connectClient(proxy.url(path), token);
    const sessionId = transport.sessionId!;
    await waitUntil(
      () => proxy.openStreams((stream) => stream.sessionId === sessionId).length === 1,
      'the client listens on its event stream',
    );
    return { client, sessionId };
  }

  /**
   * Lists and calls, in a rhythm that does not line up with the balancer's,
   * so each method reaches every replica; returns what failed.
   */
  async function alternate(client: Client, tool: string, rounds = 30): Promise<string[]> {
    const failures: string[] = [];
    for (let i = 0; i < rounds; i++) {
      try {
        if (i % 3 === 0) {
          const { tools } = await client.listTools();
          if (!tools.some((listed) => listed.name === tool)) failures.push(`#${i} tools/list lacks ${tool}`);
        } else {
          const result = await client.callTool({ name: tool, arguments: { userName: `Ada${i}` } });
          const text = (result.content as { text?: string }[])[0]?.text;
          if (text !== `Hello, Ada${i}!`) failures.push(`#${i} tools/call answered ${JSON.stringify(result)}`);
        }
      } catch (error) {
        failures.push(`#${i} ${String(error)}`);
      }
    }
    return failures;
  }

  function servedBy(sessionId: string, rpcMethod: string): number[] {
    return proxy.countByReplica((req) => req.sessionId === sessionId && req.rpcMethods.includes(rpcMethod));
  }

  /** Counts the client's `tools/list_changed` notifications; `at(n)` is when the n-th (1-based) arrived. */
  function listChangedCounter(client: Client): { (): number; at: (n: number) => number } {
    const arrivals: number[] = [];
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void arrivals.push(Date.now()));
    return Object.assign(() => arrivals.length, { at: (n: number) => arrivals[n - 1] ?? NaN });
  }

  describe('/mcp/{slug}', () => {
    it('serves one session from both replicas with no failure, and relays the upstream list_changed', async () => {
      const token = await issuer.token({ roles: [role] });
      const { client, sessionId } = await connectThroughBalancer(`/mcp/${greetSlug}`, token);
      try {
        expect(await alternate(client, 'echoHai')).toEqual([]);
        for (const method of ['tools/list', 'tools/call']) {
          expect(servedBy(sessionId, method).every((count) => count > 0)).toBe(true);
        }
        const listChanged = listChangedCounter(client);
        greet.setTools([...GREET_TOOLS, SHOUT]);
        await waitUntil(() => listChanged() > 0, 'the client hears tools/list_changed');
        expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['echoHai', 'shout']);
      } finally {
        greet.setTools(GREET_TOOLS);
        await client.close();
      }
    });

    it('passes a cancellation that reaches the other replica on to the upstream', async () => {
      const token = await issuer.token({ roles: [role] });
      const { client, sessionId } = await connectThroughBalancer(`/mcp/${slowSlug}`, token);
      try {
        await cancelMidCall(client, sessionId, 'slow');
      } finally {
        await client.close();
      }
    });
    it('re-initializes an upstream that forgot the session once, not once per replica', async () => {
      const { client, sessionId } = await connectThroughBalancer(
        `/mcp/${slowSlug}`,
        await issuer.token({ roles: [role] }),
      );
      const hello = async (): Promise<void> => {
        const result = await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
        expect(result.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
      };
      try {
        for (let i = 0; i < 4; i++) await hello();
        expect(servedBy(sessionId, 'tools/call').every((count) => count > 0)).toBe(true);
        const mark = slow.requests.length;
        await slow.forgetSessions();
        const failures: string[] = [];
        for (let i = 0; i < 10; i++) await hello().catch((error: unknown) => failures.push(String(error)));
        expect(failures).toEqual([]);
        const after = slow.requests.slice(mark);
        const initializes = after.filter((req) => req.rpcMethods.includes('initialize'));
        const firstInit = after.findIndex((req) => req.rpcMethods.includes('initialize'));
        const callSessions = new Set(
          after
            .slice(firstInit + 1)
            .filter((req) => req.rpcMethods.includes('tools/call'))
            .map((req) => req.sessionId),
        );
        expect({ initializes: initializes.length, callSessions: callSessions.size }).toEqual({
          initializes: 1,
          callSessions: 1,
        });
      } finally {
        await client.close();
      }
    });
  });

  describe('/mcp', () => {
    it('serves one session from both replicas with no failure, and tells it when an upstream changes', async () => {
      const token = await issuer.token({ roles: [role] });
      const { client, sessionId } = await connectThroughBalancer('/mcp', token);
      try {
        expect(await alternate(client, `${greetSlug}__echoHai`)).toEqual([]);
        for (const method of ['tools/list', 'tools/call']) {
          expect(servedBy(sessionId, method).every((count) => count > 0)).toBe(true);
        }
        const listChanged = listChangedCounter(client);
        greet.setTools([...GREET_TOOLS, SHOUT]);
        await waitUntil(() => listChanged() > 0, 'the client hears tools/list_changed', 30_000);
        // The notification may come from the first replica to notice; every replica serves the new tool soon after.
        for (const replica of replicas) {
          await eventually(async () => {
            expect(await toolNames(replica.url, token, sessionId)).toContain(`${greetSlug}__shout`);
          });
        }
        const shout = await client.callTool({ name: `${greetSlug}__shout`, arguments: { userName: 'ada' } });
        expect(shout.content).toEqual([{ type: 'text', text: 'ADA!' }]);
      } finally {
        greet.setTools(GREET_TOOLS);
        await client.close();
      }
    });

    it('shows a registry change made through one replica on the other, with list_changed', async () => {
      const token = await issuer.token({ roles: [role] });
      const { client, sessionId } = await connectThroughBalancer('/mcp', token);
      // Changes of earlier tests have settled everywhere, so the next list_changed is this test's.
      for (const replica of replicas) {
        await eventually(async () => {
          expect(await toolNames(replica.url, token, sessionId)).not.toContain(`${greetSlug}__shout`);
        });
      }
      const listChanged = listChangedCounter(client);
      const byeTool = `${byeSlug}__echoBye`;
      /** Waits until `holds` is true of the session's tools/list on each replica; ms since `since`, by replica. */
      const whenEverywhere = async (holds: (names: string[]) => boolean, since: number): Promise<string> => {
        const delays = await Promise.all(
          replicas.map(async (replica) => {
            await eventually(async () => {
              expect(holds(await toolNames(replica.url, token, sessionId))).toBe(true);
            }, 30_000);
            return Date.now() - since;
          }),
        );
        return `A ${delays[0]} ms, B ${delays[1]} ms`;
      };
      try {
        // A new server, registered through A, appears on B (and on A: each replica's catalog follows on its own).
        let startedAt = Date.now();
        await register(replicaA(), byeSlug, bye.url);
        const added = await whenEverywhere((names) => names.includes(byeTool), startedAt);
        await waitUntil(() => listChanged() > 0, 'the client hears tools/list_changed');
        const addedHeard = listChanged.at(1) - startedAt;
        const goodbye = await client.callTool({ name: byeTool, arguments: { userName: 'Ada' } });
        expect(goodbye.content).toEqual([{ type: 'text', text: 'Bye, Ada!' }]);

        // Its roles, changed through A, hide it on B.
        const heard = listChanged();
        startedAt = Date.now();
        await request(replicaA().url)
          .patch(`/api/v1/servers/${ids.get(byeSlug)!}`)
          .send({ allowedRoles: [`Someone.Else.${run}`] })
          .expect(200);
        const hidden = await whenEverywhere((names) => !names.includes(byeTool), startedAt);
        await waitUntil(() => listChanged() > heard, 'the client hears tools/list_changed again');
        const hiddenHeard = listChanged.at(heard + 1) - startedAt;
        await expect(client.callTool({ name: byeTool, arguments: { userName: 'Ada' } })).rejects.toThrow(
          `Tool ${byeTool} not found`,
        );
        const stream = proxy.openStreams((open) => open.sessionId === sessionId)[0];
        process.stderr.write(
          `[mcp-replicas] registry change made through A; event stream on ${stream?.replica === 0 ? 'A' : 'B'}\n` +
            `  POST server → in tools/list: ${added}; list_changed heard after ${addedHeard} ms\n` +
            `  PATCH allowedRoles → gone from tools/list: ${hidden}; list_changed heard after ${hiddenHeard} ms\n`,
        );
      } finally {
        await client.close();
      }
    });

    it('passes a cancellation that reaches the other replica on to the upstream', async () => {
      const { client, sessionId } = await connectThroughBalancer('/mcp', await issuer.token({ roles: [role] }));
      try {
        await cancelMidCall(client, sessionId, `${slowSlug}__slow`);
      } finally {
        await client.close();
      }
    });
  });

  /**
   * Calls `tool`, aborts once the upstream runs it, checks the notification
   * reached the replica not running the call, and waits until the upstream's
   * handler hears the client's own reason.
   */
  async function cancelMidCall(client: Client, sessionId: string, tool: string): Promise<void> {
    const label = `cancel-${randomUUID().slice(0, 8)}`;
    const reason = `the test cancels ${label}`;
    const ofSession = (rpcMethod: string) => (req: BalancedRequest) =>
      req.sessionId === sessionId && req.rpcMethods.includes(rpcMethod);
    const controller = new AbortController();
    const call = client.callTool({ name: tool, arguments: { label } }, CallToolResultSchema, {
      signal: controller.signal,
    });
    await waitUntil(() => slow.call(label) !== undefined, `the upstream started ${label}`);
    const callReplica = proxy.requests.findLast(ofSession('tools/call'))?.replica;
    controller.abort(reason);
    await expect(call).rejects.toThrow(reason);
    await waitUntil(
      () => proxy.requests.find(ofSession('notifications/cancelled'))?.status !== undefined,
      'the cancellation went through',
    );
    // Round robin with nothing else in between: the notification lands on the replica not running the call.
    expect(proxy.requests.find(ofSession('notifications/cancelled'))?.replica).not.toBe(callReplica);
    await waitUntil(() => slow.call(label)?.abortedAt !== undefined, `the upstream aborted ${label}`);
    // The client's own reason: the abort came from notifications/cancelled, not from a dropped connection.
    expect(slow.call(label)?.abortReason).toBe(reason);
  }

  describe.each([
    ['/mcp/{slug}', (): string => `/mcp/${greetSlug}`],
    ['/mcp', (): string => '/mcp'],
  ])('ending a session on %s', (_name, path) => {
    it('through one replica makes the other answer 404 for it', async () => {
      const token = await issuer.token({ roles: [role] });
      const { client, transport } = await connectClient(proxy.url(path()), token);
      const sessionId = transport.sessionId!;
      try {
        // Both replicas know (and cache) the session before it ends.
        for (const replica of replicas) expect((await ping(replica.url + path(), token, sessionId)).status).toBe(200);
        await transport.terminateSession();
        const ended = proxy.requests.findLast((req) => req.method === 'DELETE' && req.sessionId === sessionId);
        expect(ended?.status).toBe(200);
        const other = replicas[(ended!.replica + 1) % replicas.length]!;
        expect((await ping(other.url + path(), token, sessionId)).status).toBe(404);
        expect((await ping(replicas[ended!.replica]!.url + path(), token, sessionId)).status).toBe(404);
      } finally {
        await client.close();
      }
    });
  });

  it('ends the event streams of a /mcp/{slug} session on every replica when it is deleted', async () => {
    const token = await issuer.token({ roles: [role] });
    const sessionId = await initializeRaw(`${replicaA().url}/mcp/${greetSlug}`, token);
    const stream = await openEventStream(`${replicaB().url}/mcp/${greetSlug}`, token, sessionId);
    try {
      await deleteSession(`${replicaA().url}/mcp/${greetSlug}`, token, sessionId);
      await waitUntil(() => stream.ended, 'the stream on the other replica ends');
    } finally {
      stream.close();
    }
  });

  it('ends the event streams of a /mcp session on every replica when it is deleted', async () => {
    const token = await issuer.token({ roles: [role] });
    const sessionId = await initializeRaw(`${replicaA().url}/mcp`, token);
    const stream = await openEventStream(`${replicaB().url}/mcp`, token, sessionId);
    try {
      await deleteSession(`${replicaA().url}/mcp`, token, sessionId);
      await waitUntil(() => stream.ended, 'the stream on the other replica ends', 5_000);
    } finally {
      stream.close();
    }
  });

  // Last: these stop the replicas.
  describe('losing a replica', () => {
    const ofSession = (sessionId: string, rpcMethod: string) => (req: BalancedRequest) =>
      req.sessionId === sessionId && req.rpcMethods.includes(rpcMethod);

    it('continues the session on the other replica when the one running a call is SIGKILLed mid-stream', async () => {
      const token = await issuer.token({ roles: [role] });
      const { client, sessionId } = await connectThroughBalancer(`/mcp/${slowSlug}`, token);
      const label = `killed-${randomUUID().slice(0, 8)}`;
      const controller = new AbortController();
      const inFlight = client
        .callTool({ name: 'slow', arguments: { label } }, CallToolResultSchema, { signal: controller.signal })
        .then(
          () => 'answered',
          (error: unknown) => `failed: ${String(error)}`,
        );
      try {
        await waitUntil(() => slow.call(label) !== undefined, 'the upstream runs the call');
        const victimIndex = proxy.requests.findLast(ofSession(sessionId, 'tools/call'))!.replica;
        const victim = replicas[victimIndex]!;
        stoppedByTests.add(victim);
        victim.process.signal('SIGKILL');
        expect(await exitOf(victim)).toBeNull();

        const mark = proxy.requests.length;
        const next = await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
        expect(next.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
        expect(proxy.requests.slice(mark).find(ofSession(sessionId, 'tools/call'))).toMatchObject({
          replica: (victimIndex + 1) % replicas.length,
          status: 200,
        });
        // The client's event stream, wherever it was, is open on the survivor.
        await waitUntil(
          () => proxy.openStreams((open) => open.sessionId === sessionId && open.replica !== victimIndex).length === 1,
          'the event stream is open on the surviving replica',
        );
      } finally {
        controller.abort('the test is over');
        process.stderr.write(`[mcp-replicas] the call in flight on the killed replica: ${await inFlight}\n`);
        await client.close();
      }
    });

    it('finishes a call in flight on a SIGTERMed replica before it exits 0', async () => {
      const survivor = replicas.find((replica) => !stoppedByTests.has(replica))!;
      const token = await issuer.token({ roles: [role] });
      const { client, sessionId } = await connectThroughBalancer(`/mcp/${slowSlug}`, token);
      const label = `drained-${randomUUID().slice(0, 8)}`;
      try {
        const call = client.callTool({ name: 'slow', arguments: { label } });
        await waitUntil(() => slow.call(label) !== undefined, 'the upstream runs the call');
        expect(proxy.requests.findLast(ofSession(sessionId, 'tools/call'))?.replica).toBe(replicas.indexOf(survivor));
        stoppedByTests.add(survivor);
        survivor.process.signal('SIGTERM');
        await waitUntil(
          () => survivor.process.logLines().some((line) => line.msg === 'shutting down: draining requests'),
          'the replica drains',
        );
        slow.releaseAll();
        expect((await call).content).toEqual([{ type: 'text', text: `released ${label}` }]);
        expect(await exitOf(survivor)).toBe(0);
      } finally {
        await client.close();
      }
    });
  });
});

/** The names `tools/list` gives one session at one replica's `/mcp`. */
async function toolNames(replicaUrl: string, token: string, sessionId: string): Promise<string[]> {
  const res = await fetch(`${replicaUrl}/mcp`, {
    method: 'POST',
    headers: mcpHeaders(token, sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', id: randomUUID(), method: 'tools/list' }),
  });
  const body = (await res.json()) as { result?: { tools: { name: string }[] } };
  if (!body.result) throw new Error(`tools/list answered ${res.status} ${JSON.stringify(body)}`);
  return body.result.tools.map((tool) => tool.name);
}

async function ping(url: string, token: string, sessionId: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: mcpHeaders(token, sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', id: randomUUID(), method: 'ping' }),
  });
  return { status: res.status, text: await res.text() };
}

async function deleteSession(url: string, token: string, sessionId: string): Promise<void> {
  const res = await fetch(url, { method: 'DELETE', headers: mcpHeaders(token, sessionId) });
  await res.text();
  if (res.status !== 200) throw new Error(`DELETE at ${url} answered ${res.status}`);
}
