import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { McpExchange } from '../src/traffic/mcp-exchange';
import { McpTraffic } from '../src/traffic/mcp-traffic';
import type { LocalEntraIssuer } from './support/entra-issuer';
import { eventually, waitUntil } from './support/eventually';
import type { TestGateway } from './support/gateway';
import { type GuardedUpstreams, guardUpstreams } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { SlowUpstream } from './support/slow-upstream';

/**
 * Cancellation and time bounds end to end: a client's `notifications/cancelled`
 * must stop the upstream's handler, and an upstream that never answers must
 * fail the call within the server's `timeouts.requestMs` while the gateway
 * goes on serving everyone else.
 */
describe('cancellation and upstream time bounds', () => {
  let deployment: GuardedUpstreams<SlowUpstream> | undefined;
  let issuer: LocalEntraIssuer;
  let upstream: SlowUpstream;
  let gw: TestGateway;
  const run = randomUUID().slice(0, 8);
  /** The slow upstream with the default request timeout, and the same upstream again bounded to 1 s. */
  const slowSlug = `slow-${run}`;
  const hangSlug = `hang-${run}`;
  const role = `Waiter.${run}`;
  const REQUEST_MS = 1_000;

  const connect = async (path: string): Promise<Client> =>
    (await connectClient(`${gw.url}${path}`, await issuer.token({ roles: [role] }))).client;

  beforeAll(async () => {
    upstream = await SlowUpstream.start();
    deployment = await guardUpstreams([
      { upstream, slug: slowSlug, registration: { allowedRoles: [role] } },
      { upstream, slug: hangSlug, registration: { allowedRoles: [role], timeouts: { requestMs: REQUEST_MS } } },
    ]);
    ({ issuer, gw } = deployment);
    // Registration triggers discovery; the aggregate catalog follows.
    const client = await connect('/mcp');
    try {
      await eventually(async () => {
        const names = (await client.listTools()).tools.map((tool) => tool.name);
        expect(names).toEqual(expect.arrayContaining([`${slowSlug}__slow`, `${hangSlug}__hang`]));
      });
    } finally {
      await client.close();
    }
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  /** Calls `tool` with an AbortSignal, aborts once the upstream runs it, and returns what the upstream saw. */
  async function cancelMidCall(client: Client, tool: string): Promise<{ label: string; reason: string }> {
    const label = `cancel-${randomUUID().slice(0, 8)}`;
    const reason = `the test cancels ${label}`;
    const controller = new AbortController();
    const call = client.callTool({ name: tool, arguments: { label } }, CallToolResultSchema, {
      signal: controller.signal,
      timeout: 30_000,
    });
    await waitUntil(() => upstream.call(label) !== undefined, `the upstream started ${label}`);
    controller.abort(reason);
    // The client gives up at once; what matters is whether the upstream hears of it.
    await expect(call).rejects.toThrow(reason);
    return { label, reason };
  }

  it('passes notifications/cancelled through /mcp/{slug} to the upstream, whose handler is aborted', async () => {
    const client = await connect(`/mcp/${slowSlug}`);
    try {
      const cancelled: McpExchange[] = [];
      const stop = gw.gateway.app.get(McpTraffic).onRecord((exchange) => {
        if (exchange.outcome === 'cancelled') cancelled.push(exchange);
      });
      const { label, reason } = await cancelMidCall(client, 'slow');
      await waitUntil(() => upstream.call(label)?.abortedAt !== undefined, `the upstream aborted ${label}`, 10_000);
      // The reason is the client's own: the abort came from notifications/cancelled, not a dropped connection.
      expect(upstream.call(label)?.abortReason).toBe(reason);
      // The gateway let go of the call at once, not when the upstream's time bound ran out.
      await waitUntil(
        () => cancelled.some((exchange) => (exchange.arguments as { label?: string }).label === label),
        'the gateway ended the cancelled call',
        10_000,
      );
      stop();
      const record = cancelled.find((exchange) => (exchange.arguments as { label?: string }).label === label);
      expect(record).toMatchObject({ surface: 'server', outcome: 'cancelled' });
      expect(record?.errorKind).toBeUndefined();
      const hello = await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
      expect(hello.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
    } finally {
      await client.close();
    }
  });

  it('passes notifications/cancelled through /mcp to the upstream, whose handler is aborted', async () => {
    const client = await connect('/mcp');
    const records = recordsOfCalls();
    try {
      const { label, reason } = await cancelMidCall(client, `${slowSlug}__slow`);
      await waitUntil(() => upstream.call(label)?.abortedAt !== undefined, `the upstream aborted ${label}`, 10_000);
      expect(upstream.call(label)?.abortReason).toBe(reason);
      await waitUntil(() => records.of(label) !== undefined, 'the gateway recorded the call', 10_000);
      expect(records.of(label)).toMatchObject({ surface: 'aggregate', outcome: 'cancelled' });
      expect(records.of(label)?.errorKind).toBeUndefined();
      const hello = await client.callTool({ name: `${slowSlug}__echoHai`, arguments: { userName: 'Ada' } });
      expect(hello.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
    } finally {
      records.stop();
      await client.close();
    }
  });

  it('answers a request the client cancelled on /mcp with nothing: its event stream ends empty', async () => {
    const token = await issuer.token({ roles: [role] });
    const { client, transport } = await connectClient(`${gw.url}/mcp`, token);
    try {
      const post = (message: Record<string, unknown>) =>
        fetch(`${gw.url}/mcp`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-session-id': transport.sessionId!,
          },
          body: JSON.stringify({ jsonrpc: '2.0', ...message }),
        });
      const label = `cancel-${randomUUID().slice(0, 8)}`;
      const call = post({
        id: 'c1',
        method: 'tools/call',
        params: { name: `${slowSlug}__slow`, arguments: { label } },
      });
      await waitUntil(() => upstream.call(label) !== undefined, `the upstream started ${label}`);
      const cancel = await post({ method: 'notifications/cancelled', params: { requestId: 'c1', reason: 'enough' } });
      expect(cancel.status).toBe(202);
      const answered = await call;
      expect([answered.status, answered.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
      expect(await answered.text()).not.toContain('"id":"c1"');
      await waitUntil(() => upstream.call(label)?.abortedAt !== undefined, `the upstream aborted ${label}`, 10_000);
    } finally {
      await client.close();
    }
  });

  /** POSTs `body` (JSON) to `path`, and closes the connection once the upstream has started the call `label`. */
  async function postAndHangUp(
    path: string,
    headers: Record<string, string>,
    body: string,
    label: string,
  ): Promise<void> {
    const call = http.request(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
    });
    const closed = new Promise<unknown>((resolve) => call.once('error', resolve).once('close', resolve));
    call.end(body);
    await waitUntil(() => upstream.call(label) !== undefined, `the upstream started ${label}`);
    call.destroy();
    await closed;
  }

  /** The calls the gateway records from now on, by the `label` argument the slow upstream's tools take. */
  function recordsOfCalls(): { of: (label: string) => McpExchange | undefined; stop: () => void } {
    const seen: McpExchange[] = [];
    const stop = gw.gateway.app.get(McpTraffic).onRecord((exchange) => seen.push(exchange));
    return {
      of: (label) => seen.find((exchange) => (exchange.arguments as { label?: string } | undefined)?.label === label),
      stop,
    };
  }

  it.each([
    ['/mcp/{slug}', () => `/mcp/${slowSlug}`, 'slow', 'server'],
    ['/mcp', () => '/mcp', `${slowSlug}__slow`, 'aggregate'],
  ])(
    'records a call through %s whose client closed the connection as cancelled by a client that left',
    async (_path, path, tool, surface) => {
      const token = await issuer.token({ roles: [role] });
      const { client, transport } = await connectClient(`${gw.url}${path()}`, token);
      const records = recordsOfCalls();
      try {
        const label = `closed-${randomUUID().slice(0, 8)}`;
        const body = JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: tool, arguments: { label } },
        });
        await postAndHangUp(
          path(),
          {
            authorization: `Bearer ${token}`,
            accept: 'application/json, text/event-stream',
            'mcp-session-id': transport.sessionId!,
          },
          body,
          label,
        );
        await waitUntil(() => records.of(label) !== undefined, 'the gateway recorded the call', 10_000);
        expect(records.of(label)).toMatchObject({ surface, outcome: 'cancelled', errorKind: 'client_closed' });
      } finally {
        records.stop();
        await client.close();
      }
    },
  );

  it('cancels the upstream call of a REST bridge client that hangs up, and records the call as cancelled', async () => {
    const label = `rest-${randomUUID().slice(0, 8)}`;
    const cancelled: McpExchange[] = [];
    const stop = gw.gateway.app.get(McpTraffic).onRecord((exchange) => {
      if ((exchange.arguments as { label?: string } | undefined)?.label === label) cancelled.push(exchange);
    });
    try {
      const token = await issuer.token({ roles: [role] });
      await postAndHangUp(
        `/mcp/${slowSlug}/tools/slow`,
        { authorization: `Bearer ${token}` },
        JSON.stringify({ label }),
        label,
      );
      await waitUntil(() => upstream.call(label)?.abortedAt !== undefined, `the upstream aborted ${label}`, 10_000);
      expect(upstream.call(label)?.abortReason).toBe('the client closed the connection');
      await waitUntil(() => cancelled.length > 0, 'the gateway recorded the call', 10_000);
      expect(cancelled.map((exchange) => [exchange.surface, exchange.outcome, exchange.errorKind])).toEqual([
        ['rest', 'cancelled', 'client_closed'],
      ]);
    } finally {
      stop();
    }
  });

  /**
   * Starts a `hang` call, checks the gateway keeps serving while it waits,
   * and returns the call's error and how long it took to arrive.
   */
  async function hangingCall(path: string, tool: string, echo: string): Promise<{ error: unknown; elapsedMs: number }> {
    const client = await connect(path);
    const bystander = await connect(path);
    try {
      const label = `hang-${randomUUID().slice(0, 8)}`;
      const startedAt = Date.now();
      // The client's own bound is far beyond the server's: the error must be the gateway's, not the client's.
      const hung = client
        .callTool({ name: tool, arguments: { label } }, CallToolResultSchema, { timeout: 8 * REQUEST_MS })
        .then(
          () => new Error('the hanging call answered'),
          (error: unknown) => error,
        );
      await waitUntil(() => upstream.call(label) !== undefined, `the upstream started ${label}`);
      // Meanwhile the gateway answers other calls, on the same session and on another one.
      const hello = await client.callTool({ name: echo, arguments: { userName: 'Ada' } });
      expect(hello.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
      expect((await bystander.listTools()).tools.length).toBeGreaterThan(0);
      const error = await hung;
      return { error, elapsedMs: Date.now() - startedAt };
    } finally {
      await bystander.close();
      await client.close();
    }
  }

  it('fails a call to a hanging upstream through /mcp/{slug} with a timeout error, serving others meanwhile', async () => {
    const { error, elapsedMs } = await hangingCall(`/mcp/${hangSlug}`, 'hang', 'echoHai');
    process.stderr.write(`[mcp-cancel] /mcp/{slug} hang: error after ${elapsedMs} ms (requestMs ${REQUEST_MS})\n`);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(`Upstream ${hangSlug} failed: the upstream did not answer in time`);
  });

  it('fails a call to a hanging upstream through /mcp with a timeout error, serving others meanwhile', async () => {
    const { error, elapsedMs } = await hangingCall('/mcp', `${hangSlug}__hang`, `${hangSlug}__echoHai`);
    process.stderr.write(`[mcp-cancel] /mcp hang: error after ${elapsedMs} ms (requestMs ${REQUEST_MS})\n`);
    expect((error as Error).message).toContain(`Upstream ${hangSlug} failed: the upstream did not answer in time`);
  });
});
