import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, type Progress } from '@modelcontextprotocol/sdk/types.js';
import request from 'supertest';
import { MAX_FRUITLESS_RESUMPTIONS, MIN_RETRY_MS } from '../src/mcp/streamable-http-client';
import type { AuditRecordView } from '../src/audit/audit.dto';
import type { McpExchange } from '../src/traffic/mcp-exchange';
import { McpTraffic } from '../src/traffic/mcp-traffic';
import { auditOf } from './support/audit';
import type { LocalEntraIssuer } from './support/entra-issuer';
import { eventually, waitUntil } from './support/eventually';
import type { TestGateway } from './support/gateway';
import { type GuardedUpstreams, guardUpstreams } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { PollingUpstream } from './support/polling-upstream';

/**
 * Upstreams that close a call's event stream before answering ("SSE polling", 2025-11-25): where the gateway is the
 * upstream's client (`/mcp` and the REST bridge, through its pooled sessions), it resumes the stream by GET with
 * Last-Event-ID and answers from there, within the call's time bound and cancellable as ever.
 */
describe('resuming an upstream event stream closed before its answer', () => {
  let deployment: GuardedUpstreams<PollingUpstream> | undefined;
  let issuer: LocalEntraIssuer;
  let upstream: PollingUpstream;
  let gw: TestGateway;
  const run = randomUUID().slice(0, 8);
  const slug = `poll-${run}`;
  /** The same upstream again, its calls bounded to 1 s. */
  const boundSlug = `bound-${run}`;
  const role = `Poller.${run}`;
  const REQUEST_MS = 1_000;

  const connect = async (): Promise<Client> =>
    (await connectClient(`${gw.url}/mcp`, await issuer.token({ roles: [role] }))).client;
  const bearer = async (): Promise<string> => `Bearer ${await issuer.token({ roles: [role] })}`;

  beforeAll(async () => {
    upstream = await PollingUpstream.start();
    deployment = await guardUpstreams([
      { upstream, slug, registration: { allowedRoles: [role] } },
      { upstream, slug: boundSlug, registration: { allowedRoles: [role], timeouts: { requestMs: REQUEST_MS } } },
    ]);
    ({ issuer, gw } = deployment);
    const client = await connect();
    try {
      await eventually(async () => {
        const names = (await client.listTools()).tools.map((tool) => tool.name);
        expect(names).toEqual(
          expect.arrayContaining([
            `${slug}__poll`,
            `${slug}__stall`,
            `${boundSlug}__pollForever`,
            `${boundSlug}__stall`,
          ]),
        );
      });
    } finally {
      await client.close();
    }
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  /**
   * A session on /mcp/{slug} opened by plain HTTP with `accept`: the headers that name it (with the token), and a
   * POST of one message on it.
   */
  async function rawSession(accept: string): Promise<{
    headers: Record<string, string>;
    post: (message: Record<string, unknown>) => Promise<Response>;
  }> {
    const headers: Record<string, string> = { authorization: await bearer(), 'mcp-protocol-version': '2025-11-25' };
    const post = (message: Record<string, unknown>): Promise<Response> =>
      fetch(`${gw.url}/mcp/${slug}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', accept },
        body: JSON.stringify({ jsonrpc: '2.0', ...message }),
      });
    const params = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } };
    const opened = await post({ id: 0, method: 'initialize', params });
    expect(opened.status).toBe(200);
    await opened.text();
    headers['mcp-session-id'] = opened.headers.get('mcp-session-id')!;
    expect((await post({ method: 'notifications/initialized' })).status).toBe(202);
    return { headers, post };
  }

  it('answers a call through /mcp from the resumed stream, with the progress of both streams', async () => {
    const client = await connect();
    try {
      const before = upstream.resumptions;
      const progress: Progress[] = [];
      const label = `mcp-${randomUUID().slice(0, 8)}`;
      const result = await client.callTool({ name: `${slug}__poll`, arguments: { label } }, CallToolResultSchema, {
        onprogress: (update) => progress.push(update),
      });
      expect(result.content).toEqual([{ type: 'text', text: `polled ${label}` }]);
      // The first before the upstream closed the stream, the second replayed on the resumed one.
      expect(progress).toEqual([
        { progress: 1, total: 2 },
        { progress: 2, total: 2 },
      ]);
      expect(upstream.resumptions).toBeGreaterThan(before);
      // The SDK's upstream keeps a resumed stream open once it has replayed the answer: the gateway leaves it.
      await waitUntil(() => upstream.openResumptions === 0, 'the gateway closed the resumed stream');
    } finally {
      await client.close();
    }
  });

  it('answers a call through the REST bridge from the resumed stream', async () => {
    const label = `rest-${randomUUID().slice(0, 8)}`;
    const res = await request(gw.url)
      .post(`/mcp/${slug}/tools/poll`)
      .set('authorization', await bearer())
      .send({ label })
      .expect(200);
    expect(res.body.content).toEqual([{ type: 'text', text: `polled ${label}` }]);
    await waitUntil(() => upstream.openResumptions === 0, 'the gateway closed the resumed stream');
  });

  it('ends a call whose resumed stream never answers at its time bound, on /mcp and the REST bridge', async () => {
    const client = await connect();
    try {
      expect(
        await failureOf(
          client,
          { name: `${boundSlug}__pollForever`, arguments: { label: `forever-${run}` } },
          { timeout: 8 * REQUEST_MS },
        ),
      ).toContain(`Upstream ${boundSlug} failed: the upstream did not answer in time`);
    } finally {
      await client.close();
    }
    const res = await request(gw.url)
      .post(`/mcp/${boundSlug}/tools/pollForever`)
      .set('authorization', await bearer())
      .send({ label: `forever-rest-${run}` })
      .expect(504);
    expect(res.body).toMatchObject({
      code: 'upstream_timeout',
      detail: `upstream ${boundSlug} did not answer in time`,
    });
    // The resumed streams were let go with their calls.
    await waitUntil(() => upstream.openResumptions === 0, 'the gateway closed its resumed streams');
  });

  it('passes notifications/cancelled to the upstream while waiting on a resumed stream, and stops waiting', async () => {
    const client = await connect();
    const records: McpExchange[] = [];
    const stop = gw.gateway.app.get(McpTraffic).onRecord((exchange) => records.push(exchange));
    try {
      const label = `cancel-${randomUUID().slice(0, 8)}`;
      const reason = `the test cancels ${label}`;
      const before = upstream.resumptions;
      const controller = new AbortController();
      const call = client.callTool({ name: `${slug}__pollForever`, arguments: { label } }, CallToolResultSchema, {
        signal: controller.signal,
        timeout: 30_000,
      });
      await waitUntil(() => upstream.resumptions > before, 'the gateway resumed the stream');
      controller.abort(reason);
      await expect(call).rejects.toThrow(reason);
      await waitUntil(() => upstream.call(label)?.abortReason !== undefined, `the upstream aborted ${label}`);
      expect(upstream.call(label)?.abortReason).toBe(reason);
      const recorded = (): McpExchange | undefined =>
        records.find((exchange) => (exchange.arguments as { label?: string } | undefined)?.label === label);
      await waitUntil(() => recorded() !== undefined, 'the gateway recorded the call');
      expect(recorded()).toMatchObject({ surface: 'aggregate', outcome: 'cancelled' });
      await waitUntil(() => upstream.openResumptions === 0, 'the gateway closed the resumed stream');
    } finally {
      stop();
      await client.close();
    }
  });

  it('gives up on a stream resumed again and again without a new event, after as many GETs as the cap', async () => {
    const gave = `Upstream ${slug} failed: the upstream's event stream, resumed ${MAX_FRUITLESS_RESUMPTIONS} times in a row, ended each time without a new event`;
    const client = await connect();
    try {
      // retry: 0 as well: the cap, not time, ends it, and the GETs are counted, not timed.
      for (const retry of [10, 0]) {
        const label = `stall-${retry}-${randomUUID().slice(0, 8)}`;
        expect(
          await failureOf(client, { name: `${slug}__stall`, arguments: { label, retry, fresh: false } }),
        ).toContain(gave);
        expect(upstream.resumptionsOf.get(label)).toBe(MAX_FRUITLESS_RESUMPTIONS);
      }
    } finally {
      await client.close();
    }
    const label = `stall-rest-${randomUUID().slice(0, 8)}`;
    const res = await request(gw.url)
      .post(`/mcp/${slug}/tools/stall`)
      .set('authorization', await bearer())
      .send({ label, retry: 0, fresh: false })
      .expect(502);
    expect(res.body).toMatchObject({
      code: 'upstream_error',
      detail: gave.replace(`Upstream ${slug}`, `upstream ${slug}`),
    });
    expect(upstream.resumptionsOf.get(label)).toBe(MAX_FRUITLESS_RESUMPTIONS);
  });

  it('waits at least MIN_RETRY_MS before each resumption, though the upstream asks for retry: 0', async () => {
    const client = await connect();
    const label = `fresh-${randomUUID().slice(0, 8)}`;
    try {
      // Each resumed stream brings a new priming event: never given up on, the call ends at its time bound.
      expect(
        await failureOf(
          client,
          { name: `${boundSlug}__stall`, arguments: { label, retry: 0, fresh: true } },
          { timeout: 8 * REQUEST_MS },
        ),
      ).toContain(`Upstream ${boundSlug} failed: the upstream did not answer in time`);
    } finally {
      await client.close();
    }
    const gets = upstream.resumptionsOf.get(label) ?? 0;
    expect(gets).toBeGreaterThanOrEqual(2);
    expect(gets).toBeLessThanOrEqual(REQUEST_MS / MIN_RETRY_MS);
  });

  it('resumes a stream that broke after an event with an id: the answer reaches /mcp/{slug}, /mcp and REST', async () => {
    // Through /mcp/{slug} the client resumes the stream itself, by GET with Last-Event-ID through the gateway.
    const direct = (await connectClient(`${gw.url}/mcp/${slug}`, await issuer.token({ roles: [role] }))).client;
    try {
      const label = `break-slug-${randomUUID().slice(0, 8)}`;
      const result = await direct.callTool({ name: 'breakOff', arguments: { label, early: false } });
      expect(result.content).toEqual([{ type: 'text', text: `resumed ${label}` }]);
      expect(upstream.resumptionsOf.get(label)).toBe(1);
      // Audited as left to the client to resume, with the break's kind; not as an upstream that failed the call.
      await auditOf(gw.gateway.app).trail.flush();
      const audited = await request(gw.url).get('/api/v1/audit').query({ server: slug, tool: 'breakOff' }).expect(200);
      const record = (audited.body.records as AuditRecordView[]).find(
        (one) => (one.arguments as { label?: string } | undefined)?.label === label,
      );
      expect(record).toMatchObject({ surface: 'server', outcome: 'resumable', errorKind: 'connection_refused' });
    } finally {
      await direct.close();
    }
    const client = await connect();
    try {
      const label = `break-mcp-${randomUUID().slice(0, 8)}`;
      const result = await client.callTool({ name: `${slug}__breakOff`, arguments: { label, early: false } });
      expect(result.content).toEqual([{ type: 'text', text: `resumed ${label}` }]);
      expect(upstream.resumptionsOf.get(label)).toBe(1);
    } finally {
      await client.close();
    }
    const label = `break-rest-${randomUUID().slice(0, 8)}`;
    const res = await request(gw.url)
      .post(`/mcp/${slug}/tools/breakOff`)
      .set('authorization', await bearer())
      .send({ label, early: false })
      .expect(200);
    expect(res.body.content).toEqual([{ type: 'text', text: `resumed ${label}` }]);
  });

  it("breaks the client's listening stream on /mcp/{slug} when the upstream's breaks, and ends it when it ends", async () => {
    // A client of its own, which opens no listening stream but those the test does.
    const { headers } = await rawSession('application/json, text/event-stream');
    upstream.nextListen = 'break';
    const broken = await listenThrough(`${gw.url}/mcp/${slug}`, headers);
    expect(broken).toMatchObject({ status: 200, ending: 'broken' });
    const lastEventId = /^id: (listen\.\d+)$/m.exec(broken.text)?.[1];
    expect(lastEventId).toBeDefined();
    // What the client does with a broken stream: it resumes it, through the gateway, after the event it has.
    const resumed = await listenThrough(`${gw.url}/mcp/${slug}`, { ...headers, 'last-event-id': lastEventId! });
    expect(resumed.ending).toBe('ended');
    expect(upstream.listenResumptions).toContain(lastEventId);
    upstream.nextListen = 'end';
    const ended = await listenThrough(`${gw.url}/mcp/${slug}`, headers);
    expect(ended.ending).toBe('ended');
    expect(ended.text).toMatch(/^id: listen\.\d+$/m);
  });

  it('resumes for a JSON-only client on /mcp/{slug} the stream it cannot resume itself, and answers in JSON', async () => {
    const { post } = await rawSession('application/json');
    // A stream broken after a priming event, and one the upstream closes before its answer (SSE polling).
    const broken = `json-break-${randomUUID().slice(0, 8)}`;
    const polled = `json-poll-${randomUUID().slice(0, 8)}`;
    const calls = [
      { name: 'breakOff', arguments: { label: broken, early: false }, text: `resumed ${broken}` },
      { name: 'poll', arguments: { label: polled }, text: `polled ${polled}` },
    ];
    for (const [index, { name, arguments: args, text }] of calls.entries()) {
      const answer = await post({ id: index + 1, method: 'tools/call', params: { name, arguments: args } });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await answer.json()).toEqual({
        jsonrpc: '2.0',
        id: index + 1,
        result: { content: [{ type: 'text', text }] },
      });
    }
    expect(upstream.resumptionsOf.get(broken)).toBe(1);
    await waitUntil(() => upstream.openResumptions === 0, 'the gateway closed the resumed streams');
  });

  it('resumes again a stream whose reconnection is dropped before its answer, up to the cap', async () => {
    const client = await connect();
    try {
      const label = `drop-${randomUUID().slice(0, 8)}`;
      const result = await client.callTool({ name: `${slug}__breakOff`, arguments: { label, early: false, drop: 3 } });
      expect(result.content).toEqual([{ type: 'text', text: `resumed ${label}` }]);
      expect(upstream.resumptionsOf.get(label)).toBe(4);
      const never = `drop-all-${randomUUID().slice(0, 8)}`;
      expect(
        await failureOf(client, { name: `${slug}__breakOff`, arguments: { label: never, early: false, drop: 1_000 } }),
      ).toContain(
        `Upstream ${slug} failed: the upstream's event stream could not be resumed: connection reset by the upstream, ${MAX_FRUITLESS_RESUMPTIONS} times in a row`,
      );
    } finally {
      await client.close();
    }
  });

  it('fails a call whose stream broke before any event id, as before', async () => {
    const label = `break-early-${randomUUID().slice(0, 8)}`;
    const client = await connect();
    try {
      expect(await failureOf(client, { name: `${slug}__breakOff`, arguments: { label, early: true } })).toContain(
        `Upstream ${slug} failed: connection reset by the upstream`,
      );
    } finally {
      await client.close();
    }
    expect(upstream.resumptionsOf.get(label)).toBeUndefined();
  });

  it('does not resume a stream that ended early without an event id: no answer, as before', async () => {
    const before = upstream.resumptions;
    const client = await connect();
    try {
      expect(await failureOf(client, { name: `${slug}__cutShort`, arguments: {} })).toContain(
        `Upstream ${slug} failed: it sent no answer`,
      );
    } finally {
      await client.close();
    }
    const res = await request(gw.url)
      .post(`/mcp/${slug}/tools/cutShort`)
      .set('authorization', await bearer())
      .send({})
      .expect(502);
    expect(res.body).toMatchObject({ code: 'upstream_error', detail: `upstream ${slug} sent no answer` });
    expect(upstream.resumptions).toBe(before);
  });
});

/** The message of the error a tool call through `client` fails with; the test fails if it answers instead. */
async function failureOf(
  client: Client,
  params: { name: string; arguments: Record<string, unknown> },
  options?: { timeout: number },
): Promise<string> {
  const failure = await client.callTool(params, CallToolResultSchema, options).then(
    () => new Error('the call answered'),
    (error: unknown) => error as Error,
  );
  return failure.message;
}

/** A listening stream (GET) read to its end: what it carried, and whether it ended or broke. */
function listenThrough(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string; ending: 'ended' | 'broken' }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      let text = '';
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (ended = true));
      // A response cut short fails with 'aborted' (ECONNRESET); its close tells the end from the break.
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode ?? 0, text, ending: ended ? 'ended' : 'broken' }));
    });
    req.on('error', reject);
  });
}
